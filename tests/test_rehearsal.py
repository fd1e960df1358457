"""The paper-profile rehearsal: its params, its scratch copy, its weights, and (slow) a run of a subset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import yaml
from safetensors.torch import load_file

from miad.config import load_params
from miad.rehearsal import RehearsalError
from miad.rehearsal.params import Shrink, rehearsal_params
from miad.rehearsal.run import expected_cells, missing_outputs
from miad.rehearsal.scratch import copy_project, scratch_folder
from miad.rehearsal.weights import write_random_weights
from tests.project_copy import REPO


def paper_data() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))


def test_rehearsal_params_shrink_only_counts_epochs_and_device(tmp_path: Path) -> None:
    data = paper_data()
    shrunk = rehearsal_params(data, Shrink(threads=2))
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(shrunk), encoding="utf-8")
    params = load_params(path)
    assert params.profile == "paper"
    render, paper_render = params.active.render, data["paper"]["render"]
    assert (render.resolution, render.samples, render.denoise, render.shard_size) == (512, 64, True, 250)
    assert (render.n_train, render.n_test_good, render.n_test_defective, render.device) == (4, 2, 2, "cpu")
    assert paper_render["n_train"] == 10000  # the input is not modified
    train = params.active.train
    assert train.device == "cpu"
    assert (train.patchcore.backbone, train.patchcore.layers, train.patchcore.image_size) == (
        "wide_resnet50_2",
        (2, 3),
        224,
    )
    assert (train.uniad.backbone, train.uniad.layers) == ("efficientnet_b4", (0, 1, 2, 3))
    assert {train.rd.epochs, train.fastflow.epochs, train.draem.epochs, train.ae.epochs, train.uniad.epochs} == {1}
    assert train.rd.image_size == 256 and train.fastflow.flow_steps == 8 and train.draem.reconstructive_channels == 128
    assert list(params.scenarios) == data["scenarios"] and len(params.scenarios) == 7


def test_rehearsal_params_subset_and_bad_choices() -> None:
    data = paper_data()
    shrunk = rehearsal_params(data, Shrink(scenarios=("witness_mark",), methods=("patchcore", "uniad")))
    assert shrunk["scenarios"] == ["witness_mark"] and shrunk["methods"] == ["patchcore"]
    assert shrunk["unified_methods"] == ["uniad"]
    assert shrunk["table7"]["scenarios"] == ["witness_mark"] and shrunk["table7"]["methods"] == ["patchcore"]
    assert shrunk["ablation"]["scenarios"] == ["witness_mark"] and shrunk["ablation"]["methods"] == ["patchcore"]
    cells = expected_cells(shrunk)
    assert ("main/witness_mark", "uniad") in cells and ("us/witness_mark", "patchcore") in cells
    table7 = [cell for cell in cells if cell[0].startswith("table7/")]
    assert len(cells) == 6 + len(table7) and len(table7) == 5 + 5  # fractions and 1.0, capped and uncapped
    assert ("table7/0.1/main/witness_mark", "patchcore_uncapped") in table7
    with pytest.raises(RehearsalError, match="scenarios \\['nowhere'\\]"):
        rehearsal_params(data, Shrink(scenarios=("nowhere",)))
    with pytest.raises(RehearsalError, match="methods \\['padim'\\]"):
        rehearsal_params(data, Shrink(methods=("padim",)))
    with pytest.raises(RehearsalError, match="at least 1"):
        rehearsal_params(data, Shrink(n_train=0))


def test_every_table_cell_is_expected_by_default() -> None:
    cells = expected_cells(rehearsal_params(paper_data(), Shrink()))
    assert len([c for c in cells if c[0].startswith("main/")]) == 7 * 6
    assert ("table7/0.1/main/electrical_insulator", "patchcore_uncapped") in cells
    assert ("table7/1/main/electrical_insulator", "draem") in cells
    assert ("baseline/witness_mark", "fastflow") in cells


def test_missing_outputs_names_absent_tables_and_cells(tmp_path: Path) -> None:
    shrunk = rehearsal_params(paper_data(), Shrink(scenarios=("witness_mark",), methods=("patchcore",)))
    assert "results/metrics.json" in missing_outputs(tmp_path, shrunk)
    (tmp_path / "results").mkdir()
    metrics = {"main/witness_mark": {"patchcore": {"image_auroc": 0.5}}, "us/witness_mark": {"patchcore": {}}}
    (tmp_path / "results" / "metrics.json").write_text(json.dumps(metrics))
    missing = missing_outputs(tmp_path, shrunk)
    assert "results/tables/table3.md" in missing
    assert "metrics.json[us/witness_mark][patchcore].image_auroc = None" in missing
    assert not any(m.startswith("metrics.json[main/witness_mark]") for m in missing)
    assert "metrics.json[table7/0.1/main/witness_mark][patchcore].image_auroc = None" in missing


def test_scratch_folder_refuses_the_workspace_and_busy_folders(tmp_path: Path) -> None:
    with pytest.raises(RehearsalError, match="outside the project"):
        scratch_folder(REPO, REPO / "rehearsal")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(RehearsalError, match="not an empty folder"):
        scratch_folder(REPO, tmp_path / "busy")
    assert scratch_folder(REPO, tmp_path / "new") == (tmp_path / "new").resolve()


def test_copy_leaves_outputs_behind(tmp_path: Path) -> None:
    target = copy_project(REPO, tmp_path / "copy")
    assert (target / "params.yaml").is_file() and (target / "src" / "miad" / "rehearsal").is_dir()
    assert (target / ".git").is_dir() and (target / "imports" / "README.md").is_file()
    assert sorted(p.name for p in (target / "results").iterdir()) == ["maps", "runs", "runs_size"]
    for output in ("renders", "models", "results/metrics.json", "data", "dvc.lock", ".venv"):
        assert not (target / output).exists(), output


def test_random_weights_fit_the_exact_architecture(tmp_path: Path) -> None:
    path = write_random_weights("efficientnet_b4", tmp_path / "b4.safetensors", seed=1)
    state = load_file(str(path))
    model = timm.create_model("efficientnet_b4", pretrained=False)
    assert {k: tuple(v.shape) for k, v in state.items()} == {k: tuple(v.shape) for k, v in model.state_dict().items()}
    again = write_random_weights("efficientnet_b4", tmp_path / "again.safetensors", seed=1)
    assert path.read_bytes() == again.read_bytes()
    with pytest.raises(ValueError, match="unknown paper backbone"):
        write_random_weights("resnet18", tmp_path / "r.safetensors", seed=1)


@pytest.mark.slow
def test_rehearsal_runs_a_subset_end_to_end(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = [sys.executable, "-m", "miad.cli", "rehearse", "--dir", str(tmp_path / "r"), *SUBSET]
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-5000:]
    assert f"results: {tmp_path / 'r'}/results" in proc.stdout
    metrics = json.loads((tmp_path / "r" / "results" / "metrics.json").read_text())
    assert set(metrics["main/catenary_dropper"]) == {"patchcore", "uniad"}
    assert not (REPO / "rehearsal.log").exists()


# One scenario outside the ablation and Table 7 (the cheapest to render at 512 px), one per-scenario and the unified
# method; 8 spp instead of the paper's 64 so that 512 px renders with denoising fit CI's budget on 2 cores.
SUBSET = ["--scenario", "catenary_dropper", "--method", "patchcore", "--method", "uniad", "--n-train", "2", "--n-test",
          "1", "--samples", "8"]  # fmt: skip
