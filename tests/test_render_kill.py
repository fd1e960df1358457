"""A render killed with SIGKILL in the middle of a shard, then rerun, gives the same dataset byte for byte as an
uninterrupted run; a truncated shard is named by `miad verify` and rendered again by the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from miad.numeric_env import PROVENANCE_NAME
from tests.conftest import tiny_params_dict

pytestmark = pytest.mark.slow

DATA = Path(__file__).resolve().parents[1] / "data"
MIAD = [sys.executable, "-m", "miad.cli"]
SCENARIO = "electrical_insulator"


def _params(tmp_path: Path) -> Path:
    data = tiny_params_dict(n_train=12, n_test_good=3, n_test_defective=3, shard_size=4, resolution=48, samples=4)
    data["smoke"]["render"]["assets_dir"] = str(DATA)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _render(params: Path, renders: Path) -> subprocess.Popen:
    cmd = [*MIAD, "render", "--params", str(params), "--scenario", SCENARIO, "--renders", str(renders), "--no-progress"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _tree(root: Path) -> dict[str, bytes]:
    """Every file of the dataset, without the provenance sidecar (it names the commands that ran; DVC ignores it)."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != PROVENANCE_NAME)
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in files}


def test_sigkill_mid_shard_then_rerun_is_byte_identical(tmp_path: Path) -> None:
    params = _params(tmp_path)
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    proc = _render(params, reference)
    assert proc.wait(timeout=600) == 0, proc.stderr.read()

    # Kill once the first shard is finished: the second one is then half rendered
    proc = _render(params, killed)
    train = killed / "main" / SCENARIO / "train"
    deadline = time.monotonic() + 600
    while not (train / "shard-00000.zip").is_file():
        assert proc.poll() is None, "the render finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (train / "shard-00002.zip").exists(), "killed too late: the test needs a shard in progress"
    assert not (train / "manifest.json").exists()

    proc = _render(params, killed)
    assert proc.wait(timeout=600) == 0, proc.stderr.read()
    assert _tree(killed) == _tree(reference)

    # A truncated shard: verify names it, the next render replaces it with the same bytes
    shard = train / "shard-00001.zip"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    verify = subprocess.run([*MIAD, "verify", "--renders", str(killed)], capture_output=True, text=True, check=False)
    assert verify.returncode != 0 and "shard-00001.zip" in verify.stdout + verify.stderr
    proc = _render(params, killed)
    assert proc.wait(timeout=600) == 0, proc.stderr.read()
    assert _tree(killed) == _tree(reference)


def test_cycles_thread_count_does_not_change_the_bytes(tmp_path: Path) -> None:
    """render.threads is left to the machine (0 = all cores) because Cycles' output does not depend on it."""
    trees = []
    for threads in (1, 2):
        data = yaml.safe_load(_params(tmp_path).read_text(encoding="utf-8"))
        data["smoke"]["render"].update(threads=threads, n_train=4, n_test_good=2, n_test_defective=2)
        params = tmp_path / f"params-{threads}.yaml"
        params.write_text(yaml.safe_dump(data), encoding="utf-8")
        proc = _render(params, tmp_path / f"threads-{threads}")
        assert proc.wait(timeout=600) == 0, proc.stderr.read()
        trees.append(_tree(tmp_path / f"threads-{threads}"))
    assert trees[0] == trees[1] and len(trees[0]) >= 4  # shards and manifests of both splits
