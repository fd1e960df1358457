"""The pipeline on imported data: MVTec-layout folders under imports/, `dataset.source: imported`, `dvc repro`
fills Tables 3 and 4 from them and says so; a second `dvc repro` runs nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import tiny_params_dict
from tests.test_import import make_mvtec
from tests.test_pipeline import run

pytestmark = pytest.mark.slow

SCENARIOS = ["electrical_insulator", "witness_mark"]


def test_imported_source_fills_tables_3_and_4(repo_copy: Path):
    repo = repo_copy
    run(["git", "init", "-q"], repo)
    for k, scenario in enumerate(SCENARIOS):
        make_mvtec(repo / "imports" / scenario, size=(48, 56), seed=k)
    params = tiny_params_dict(shard_size=6)
    params["smoke"]["train"]["ae"].update(image_size=32, epochs=2)
    params.update(scenarios=SCENARIOS, methods=["ae"], unified_methods=[])
    params["dataset"]["source"] = "imported"
    params["table7"] = {"methods": ["ae"], "scenarios": ["witness_mark"], "fractions": [0.5], "uncapped_fractions": []}
    params["ablation"] = {"methods": [], "scenarios": [], "variants": []}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    run(["miad", "assets", "restore"], repo)
    log = run(["dvc", "repro"], repo)
    assert "Running stage 'render@witness_mark'" in log and "imported imports/witness_mark (56x48 px)" in log

    metrics = json.loads((repo / "results/metrics.json").read_text())
    table3 = (repo / "results/tables/table3.md").read_text()
    for scenario in SCENARIOS:
        assert f"{metrics[f'main/{scenario}']['ae']['image_auroc']:.2f} [" in table3
        assert f"imported from imports/{scenario} (mvtec layout)" in table3
    assert "like-for-like" in (repo / "results/tables/table4.md").read_text()
    stats = json.loads((repo / "results/dataset_stats.json").read_text())["main/witness_mark"]
    assert stats["test"]["images"] == 10 and stats["source"]["layout"] == "mvtec" and stats["leak_free"]
    assert "Running stage" not in run(["dvc", "repro"], repo)
    assert "up to date" in run(["dvc", "status"], repo)
