"""End to end: the smoke pipeline at a tiny size, twice from scratch: once through plain `dvc repro`, once through
`miad repro` (what `make reproduce` runs: warm workers, two stages at once).

Proves the spine works as a user runs it (tables, metrics, figure; a second `dvc repro` does
nothing; `dvc status` clean) and that the two independent runs, the second on an emulated older CPU,
give byte-identical assets, shards, checkpoints, runs, metrics and dvc.lock.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from miad.numeric_env import PROVENANCE_NAME
from tests.conftest import tiny_params_dict
from tests.project_copy import copy_project

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent

# An older CPU, as the libraries see it, emulated on this one with their own dispatch knobs: no AVX-512 anywhere
# (torch's ATen and oneDNN at AVX2, the level miad.numeric_env pins and below which their bits change; OpenCV at
# AVX2 too: below it, its 8-bit HSV->RGB conversion in DRAEM's colour augmentation takes an SSE4 path with other
# bits), NumPy without AVX2 and FMA3 either, OpenBLAS on an older core. MKL cannot be steered this way (it ignores
# such knobs on AMD); real other CPUs, MKL's vendor branches included, are tests/test_cross_cpu.py's job.
OLDER_CPU = {
    "NPY_DISABLE_CPU_FEATURES": "AVX2 FMA3 AVX512F AVX512CD AVX512_KNL AVX512_KNM AVX512_SKX AVX512_CLX AVX512_CNL "
    "AVX512_ICL",
    "OPENCV_CPU_DISABLE": "AVX512-SKX",
    "OPENBLAS_CORETYPE": "Sandybridge",
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
}
if "OPENBLAS_CORETYPE" in os.environ:  # some machines set it because their OpenBLAS needs it: leave theirs
    del OLDER_CPU["OPENBLAS_CORETYPE"]


def run(cmd: list[str], cwd: Path, extra_env: dict[str, str] | None = None) -> str:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **(extra_env or {})}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def reproduce(repo: Path, extra_env: dict[str, str] | None = None, command: tuple[str, ...] = ("dvc", "repro")) -> str:
    run(["git", "init", "-q"], repo)
    params = tiny_params_dict(resolution=96, samples=4, n_train=8, n_test_good=4, n_test_defective=4, shard_size=4)
    for config in params["smoke"]["train"].values():
        if isinstance(config, dict):  # every method: 64 px, two epochs
            config["image_size"] = 64
            config.update({"epochs": 2} if "epochs" in config else {})
    params["smoke"]["train"]["draem"]["lr_milestones"] = [1]
    params["smoke"]["train"]["uniad"].update(feature_size=4, lr_drop_epoch=1)
    params["scenarios"] = ["electrical_insulator", "witness_mark"]  # a night and a day scene
    params["table7"].update(scenarios=["electrical_insulator"], fractions=[0.5], uncapped_fractions=[0.5, 1.0])
    params["ablation"].update(methods=["patchcore"], scenarios=["witness_mark"], variants=["baseline", "us"])
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    run(["miad", "assets", "restore"], repo, extra_env)
    return run(list(command), repo, extra_env)


def cell_text(values: dict[str, float], metric: str) -> str:
    """How a table shows our value of `metric` with its interval."""
    return f"{values[metric]:.2f} [{values[f'{metric}_ci_low']:.2f}, {values[f'{metric}_ci_high']:.2f}]"


def outputs(repo: Path) -> dict[str, bytes]:
    paths = [
        *repo.glob("data/**/*"),
        repo / "dvc.lock",
        *repo.glob("renders/**/*"),
        *repo.glob("models/**/*"),
        repo / "results" / "metrics.json",
        *repo.glob("results/runs/**/*.json"),
        *repo.glob("results/tables/*"),
        repo / "results" / "dataset_stats.json",
    ]
    return {  # without the provenance sidecars: they differ between the runs by design, outside DVC's hashes
        p.relative_to(repo).as_posix(): p.read_bytes()
        for p in sorted(paths)
        if p.is_file() and not p.name.endswith(PROVENANCE_NAME)
    }


def test_smoke_pipeline_end_to_end_and_deterministic(repo_copy: Path, tmp_path: Path):
    reproduce(repo_copy)
    for table in ("table3", "table4", "table5", "table6", "table7"):
        for suffix in ("md", "csv", "tex"):
            assert (repo_copy / "results" / "tables" / f"{table}.{suffix}").is_file()
    figures = ("figure2_samples", "figure2_samples_baseline", "figure2_samples_us", "figure4_anomaly_maps",
               "figure5_more_maps", "dataset_angles", "dataset_defect_ratio", "fidelity")  # fmt: skip
    for figure in figures:
        assert (repo_copy / "results" / "figures" / f"{figure}.png").stat().st_size > 1000
    stats = json.loads((repo_copy / "results" / "dataset_stats.json").read_text())
    datasets = ["baseline/witness_mark", "main/electrical_insulator", "main/witness_mark", "us/witness_mark"]
    assert sorted(stats) == datasets
    assert all(row["leak_free"] for row in stats.values())
    assert "main/witness_mark" in (repo_copy / "results" / "tables" / "dataset_stats.md").read_text()
    metrics = json.loads((repo_copy / "results" / "metrics.json").read_text())
    main = metrics["main/electrical_insulator"]
    assert set(main) == {"rd", "patchcore", "fastflow", "draem", "ae", "uniad"}
    reported = ("image_auroc", "recall_at_fpr", "aupro", "pixel_auroc")
    bounded = [f"{m}{suffix}" for m in reported for suffix in ("_ci_low", "_ci_high")]
    assert set(main["patchcore"]) == {"image_auroc", "recall_at_fpr", "aupro", "pixel_auroc", *bounded}
    table3 = (repo_copy / "results" / "tables" / "table3.md").read_text()
    for method, paper in (("patchcore", "0.55"), ("rd", "0.68"), ("uniad", "0.50")):
        assert f"{cell_text(main[method], 'image_auroc')} / {paper}" in table3
    assert "— / 0.91" in table3  # metal welding is not rendered: its cells stay empty
    table6 = (repo_copy / "results" / "tables" / "table6.md").read_text()
    for variant in ("baseline", "us"):
        assert f"{cell_text(metrics[f'{variant}/witness_mark']['patchcore'], 'image_auroc')} / " in table6
    table7 = (repo_copy / "results" / "tables" / "table7.md").read_text()
    assert f"{cell_text(metrics['table7/0.5/main/electrical_insulator']['draem'], 'image_auroc')} / " in table7
    fidelity = metrics["fidelity"]["table3_image_auroc"]
    assert fidelity["cells"] == 12 and fidelity["spearman_rho_ci_low"] <= fidelity["spearman_rho_ci_high"]
    assert set(metrics["fidelity"]) == {"table3_image_auroc", "table4_aupro"}
    assert (repo_copy / "results" / "plots" / "roc" / "fastflow" / "main" / "electrical_insulator.csv").is_file()

    again = run(["dvc", "repro"], repo_copy)
    assert "Running stage" not in again
    assert "up to date" in run(["dvc", "status"], repo_copy)
    verified = run(["miad", "verify"], repo_copy)  # every split of every dataset checked against its sha256s
    assert verified.count("ok  ") == 2 * len(datasets) and "FAIL" not in verified

    second = copy_project(tmp_path / "second")
    reproduce(second, OLDER_CPU, ("miad", "repro", "--jobs", "2"))
    first_out, second_out = outputs(repo_copy), outputs(second)
    assert first_out.keys() == second_out.keys() and len(first_out) > 10
    assert "provenance" not in first_out["dvc.lock"].decode()  # sidecars stay outside every output's hash
    differing = [name for name in first_out if first_out[name] != second_out[name]]
    assert differing == []

    # The provenance sidecars tell the two runs apart: what each process's libraries really dispatched to.
    for repo, numpy_avx2 in ((repo_copy, True), (second, False)):
        model = json.loads((repo / "models/rd/main/witness_mark/provenance.json").read_text())["runs"][-1]
        assert model["pinned"] and model["loaded_before_pin"] == []
        assert model["libraries"]["torch"]["aten_capability"] == "AVX2"
        assert model["libraries"]["torch"]["threads"] == 2
        assert ("AVX2" in model["libraries"]["numpy"]["dispatch"]) is numpy_avx2
        assert not any(f.startswith("AVX512") for f in model["libraries"]["numpy"]["dispatch"])
        assert model["command"][:2] == ["miad", "train"]
        assert (repo / "results/runs/rd/main/witness_mark.json.provenance.json").is_file()
        assert (repo / "renders/main/witness_mark/provenance.json").is_file()
