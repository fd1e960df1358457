"""Several training seeds through `dvc repro`: each extra seed trains and evaluates as its own stage, the tables
show the mean over seeds with its spread, and a second `dvc repro` runs nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import tiny_params_dict
from tests.test_pipeline import run

pytestmark = pytest.mark.slow


def test_extra_training_seeds_are_stages_and_tables_show_their_spread(repo_copy: Path):
    repo = repo_copy
    run(["git", "init", "-q"], repo)
    params = tiny_params_dict(resolution=64, n_train=6, n_test_good=4, n_test_defective=4, shard_size=4)
    for config in params["smoke"]["train"].values():
        if isinstance(config, dict):
            config["image_size"] = 64
            config.update({"epochs": 2} if "epochs" in config else {})
    params["smoke"]["train"]["uniad"].update(feature_size=4, lr_drop_epoch=1)
    params.update(scenarios=["witness_mark"], methods=["ae"], unified_methods=["uniad"], extra_training_seeds=[1])
    params["table7"] = {"methods": ["ae"], "scenarios": ["witness_mark"], "fractions": [0.5], "uncapped_fractions": []}
    params["ablation"] = {"methods": [], "scenarios": [], "variants": []}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    run(["miad", "assets", "restore"], repo)
    log = run(["dvc", "repro"], repo)
    for stage in ("train_seed@ae-witness_mark-1", "train_unified_seed@uniad-1", "evaluate_seed@ae-witness_mark-1",
                  "evaluate_unified_seed@uniad-witness_mark-1"):  # fmt: skip
        assert f"Running stage '{stage}'" in log

    first = (repo / "models/ae/main/witness_mark/model.safetensors").read_bytes()
    assert (repo / "models/ae/main/witness_mark-seed1/model.safetensors").read_bytes() != first  # another seed
    runs = [json.loads((repo / f"results/runs/ae/main/{name}.json").read_text()) for name in ("witness_mark",
            "witness_mark-seed1")]  # fmt: skip
    assert runs[0]["bootstrap"]["seed"] == runs[1]["bootstrap"]["seed"]  # paired resamples
    cell = json.loads((repo / "results/metrics.json").read_text())["main/witness_mark"]["ae"]
    values = [r["metrics"]["image_auroc"] for r in runs]
    assert cell["image_auroc"] == pytest.approx(sum(values) / 2)
    assert "image_auroc_seed_std" in cell and cell["image_auroc_ci_low"] <= cell["image_auroc_ci_high"]
    table3 = (repo / "results/tables/table3.md").read_text()
    assert f"{cell['image_auroc']:.2f}±{cell['image_auroc_seed_std']:.2f} [" in table3
    assert "mean over 2 training seeds" in table3

    assert "Running stage" not in run(["dvc", "repro"], repo)
