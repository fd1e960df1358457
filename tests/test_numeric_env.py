"""The numeric environment: dispatch capped at AVX2 and threads fixed before the libraries load, recorded beside
outputs; and the `miad` and `dvc` programs of the venv work without an activated venv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from miad import numeric_env
from tests.project_copy import copy_project

BIN = Path(sys.executable).parent
BARE_PATH = "/usr/bin:/bin"  # no venv on PATH, as after `git clone` without `source .venv/bin/activate`


def test_pinned_values_cap_at_avx2_and_keep_lower_settings():
    values = numeric_env.pinned_values(3, {})
    assert values["OMP_NUM_THREADS"] == values["MKL_NUM_THREADS"] == values["OPENBLAS_NUM_THREADS"] == "3"
    assert values["ATEN_CPU_CAPABILITY"] == "avx2" and values["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert values["MKL_CBWR"] == "COMPATIBLE" and values["OPENCV_IPP"] == "disabled"
    assert values["MKL_DYNAMIC"] == values["OMP_DYNAMIC"] == "FALSE"
    assert set(values["NPY_DISABLE_CPU_FEATURES"].split()) == set(numeric_env.NUMPY_ABOVE_AVX2)
    higher = {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE", "MKL_CBWR": "AVX2"}
    assert numeric_env.pinned_values(1, higher)["ATEN_CPU_CAPABILITY"] == "avx2"
    assert numeric_env.pinned_values(1, higher)["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert numeric_env.pinned_values(1, higher)["MKL_CBWR"] == "COMPATIBLE"  # AVX2 would be Intel's branch only
    dynamic = {"MKL_DYNAMIC": "TRUE", "OMP_DYNAMIC": "true"}
    assert numeric_env.pinned_values(1, dynamic)["MKL_DYNAMIC"] == numeric_env.pinned_values(1, dynamic)["OMP_DYNAMIC"]
    assert numeric_env.pinned_values(1, dynamic)["MKL_DYNAMIC"] == "FALSE"
    lower = {
        "ATEN_CPU_CAPABILITY": "default",
        "ONEDNN_MAX_CPU_ISA": "AVX",
        "NPY_DISABLE_CPU_FEATURES": "AVX2,FMA3",
        "OPENCV_CPU_DISABLE": "AVX2",
        "OPENBLAS_CORETYPE": "Sandybridge",
    }
    kept = numeric_env.pinned_values(1, lower)
    assert kept["ATEN_CPU_CAPABILITY"] == "default" and kept["ONEDNN_MAX_CPU_ISA"] == "AVX"
    assert kept["NPY_DISABLE_CPU_FEATURES"].split()[:2] == ["AVX2", "FMA3"]
    assert kept["OPENCV_CPU_DISABLE"] == "AVX2,AVX512-SKX" and kept["OPENBLAS_CORETYPE"] == "Sandybridge"
    assert "OPENCV_CPU_DISABLE" not in numeric_env.pinned_values(1, {}, avx512=False)  # nothing to disable there


DESCRIBE = (
    "import json, sys; from miad import numeric_env; numeric_env.pin(int(sys.argv[1])); "
    "import numpy, cv2, torch; numeric_env.apply_thread_count(); print(json.dumps(numeric_env.describe()))"
)


def describe_in_subprocess(threads: int, **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in numeric_env.KNOBS}
    proc = subprocess.run(
        [sys.executable, "-c", DESCRIBE, str(threads)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "WARN" not in proc.stderr  # OpenCV's IPP notice is silenced
    return json.loads(proc.stdout)


@pytest.mark.slow
def test_pin_before_load_caps_what_the_libraries_use():
    """In a fresh process: nothing above AVX2 in NumPy, ATen at AVX2 (or lower on an older CPU), no IPP, the
    threads from params; unpinned, the same process would use the CPU's native level."""
    described = describe_in_subprocess(3)
    libraries = described["libraries"]
    assert described["pinned"] and described["loaded_before_pin"] == []
    assert not any(f.startswith("AVX512") for f in libraries["numpy"]["dispatch"])
    assert libraries["torch"]["aten_capability"] in ("AVX2", "DEFAULT")
    assert libraries["torch"]["threads"] == 3 and libraries["opencv"]["threads"] == 3
    assert libraries["opencv"]["ipp"] is False
    features = libraries["opencv"]["features"]  # "*AVX512-SKX?": compiled in, present, disabled
    assert "AVX512-SKX?" in features or "AVX512-SKX" not in features
    assert described["knobs"]["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    native = describe_in_subprocess(3, MIAD_UNPINNED="1")
    assert native["pinned"] is False and native["knobs"] == {"MIAD_UNPINNED": "1"}
    if "avx512f" in described["cpu"]["flags"]:  # on an AVX-512 CPU the cap is what changes the code path
        assert native["libraries"]["torch"]["aten_capability"] == "AVX512"
        assert "AVX512F" in native["libraries"]["numpy"]["dispatch"]


MKL_MODE = (
    "from miad import numeric_env; numeric_env.pin(2); import torch; numeric_env.apply_thread_count(); "
    "a = torch.ones(64, 64); a @ a"
)


@pytest.mark.slow
def test_mkl_runs_the_compatible_branch_with_a_fixed_thread_count():
    """MKL's own report (MKL_VERBOSE) of a GEMM in a pinned process: the COMPATIBLE branch, the one every x86 vendor
    runs (MKL ignores `MKL_CBWR=AVX2` on AMD and reports `CNR:AUTO`), no dynamic threads, the pinned count."""
    clean = {k: v for k, v in os.environ.items() if k not in numeric_env.KNOBS}
    proc = subprocess.run(
        [sys.executable, "-c", MKL_MODE], env={**clean, "MKL_VERBOSE": "1"}, capture_output=True, text=True, check=True
    )
    gemm = [line for line in proc.stdout.splitlines() if "SGEMM" in line]
    assert gemm, proc.stdout + proc.stderr
    assert "CNR:COMPATIBLE" in gemm[0] and "Dyn:0" in gemm[0] and "NThr:2" in gemm[0], gemm[0]


def test_provenance_sidecars_sit_beside_outputs_and_append(tmp_path: Path):
    folder = tmp_path / "models" / "rd"
    folder.mkdir(parents=True)
    assert numeric_env.write_provenance(folder, command=["miad", "train"]) == folder / "provenance.json"
    result = tmp_path / "run.json"
    result.write_text("{}")
    assert numeric_env.sidecar_path(result) == tmp_path / "run.json.provenance.json"
    numeric_env.write_provenance(folder, append=True, command=["miad", "render"])
    runs = json.loads((folder / "provenance.json").read_text())["runs"]
    assert [run["command"][1] for run in runs] == ["train", "render"]
    assert runs[0]["cpu"]["model"] and runs[0]["libraries"]["miad"]
    assert runs[0]["libc"].startswith("glibc 2.")  # the C library's maths differ between releases
    numeric_env.write_provenance(folder, command=["miad", "train"])  # not appending: one run
    assert len(json.loads((folder / "provenance.json").read_text())["runs"]) == 1
    summary = numeric_env.provenance_summary(tmp_path)
    assert sum(summary.values()) == 1 and "pinned" in next(iter(summary))


def test_venv_programs_find_each_other_without_activation():
    """The venv's Python puts its own bin/ first on PATH: `.venv/bin/dvc` finds `miad`, `.venv/bin/miad` `dvc`."""
    script = "import shutil; print(shutil.which('miad')); print(shutil.which('dvc'))"
    env = {"HOME": os.environ.get("HOME", "/root"), "PATH": BARE_PATH}
    proc = subprocess.run([BIN / "python", "-c", script], env=env, capture_output=True, text=True, check=True)
    assert proc.stdout.split() == [str(BIN / "miad"), str(BIN / "dvc")]


@pytest.mark.slow
def test_unactivated_miad_restores_assets_and_dvc_runs_miad_stages(tmp_path: Path):
    repo = copy_project(tmp_path / "repo")
    env = {"HOME": os.environ.get("HOME", "/root"), "PATH": BARE_PATH}
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True, env=env)
    restored = subprocess.run([BIN / "miad", "assets", "restore"], cwd=repo, env=env, capture_output=True, text=True)
    assert restored.returncode == 0, restored.stderr
    assert "matches data.dvc" in restored.stderr
    (repo / "dvc.yaml").write_text(
        "stages:\n  params:\n    cmd: miad params > resolved.json\n    outs: [resolved.json]\n"
    )
    repro = subprocess.run([BIN / "dvc", "repro"], cwd=repo, env=env, capture_output=True, text=True)
    assert repro.returncode == 0, repro.stdout + repro.stderr
    assert json.loads((repo / "resolved.json").read_text())["profile"] == "smoke"
