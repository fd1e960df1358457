"""`miad repro`: stale stages run concurrently and are recorded exactly as `dvc repro` records them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import tiny_params_dict
from tests.dvc_toy import make_toy, outputs
from tests.pipeline_slice import BIN, TARGETS, prepare_slice, run, slice_outputs


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}


def _lock(root: Path) -> dict:
    return yaml.safe_load((root / "dvc.lock").read_text(encoding="utf-8"))


def test_concurrent_stages_recorded_as_dvc_repro_records_them(tmp_path: Path) -> None:
    plain, ours = make_toy(tmp_path / "plain"), make_toy(tmp_path / "ours")
    run(["dvc", "repro"], plain)
    log = run(["miad", "repro", "--jobs", "3"], ours)
    assert "5 ran" in log
    assert outputs(ours) == outputs(plain)
    assert _lock(ours) == _lock(plain)
    assert list(_lock(ours)["stages"]) == ["a", "b", "c", "d", "e"]  # dvc.yaml's order, whatever finished first
    assert "up to date" in run(["dvc", "status"], ours)
    assert "Running stage" not in run(["dvc", "repro"], ours)
    again = run(["miad", "repro", "--jobs", "3"], ours)
    assert "0 ran" in again and "5 unchanged" in again


def test_only_the_changed_stages_and_their_dependents_run(tmp_path: Path) -> None:
    root = make_toy(tmp_path / "toy")
    run(["miad", "repro", "-j", "2"], root)
    dvc_yaml = root / "dvc.yaml"
    dvc_yaml.write_text(dvc_yaml.read_text().replace("echo beta", "echo BETA"), encoding="utf-8")
    log = run(["miad", "repro", "-j", "2"], root)
    assert "2 ran" in log and "3 unchanged" in log  # b and d; a, c, e untouched
    assert (root / "out" / "d.txt").read_text() == "alpha\nBETA\nalpha\n"
    assert "up to date" in run(["dvc", "status"], root)


def test_a_failing_stage_is_named_with_its_output_and_independent_stages_still_recorded(tmp_path: Path) -> None:
    root = make_toy(tmp_path / "toy", fail=True)
    proc = subprocess.run(["miad", "repro", "-j", "2"], cwd=root, capture_output=True, text=True, env=_env())
    assert proc.returncode == 2
    assert "stage 'c' failed" in proc.stderr
    assert "the toy stage broke on purpose" in proc.stderr  # the command's own output, quoted
    assert "not run because a stage they depend on failed: d" in proc.stderr
    assert set(_lock(root)["stages"]) == {"a", "b", "e"}
    status = run(["dvc", "status", "a", "b", "e"], root)
    assert "up to date" in status


def test_bad_jobs_and_executor_values_are_named(tmp_path: Path) -> None:
    root = make_toy(tmp_path / "toy")
    params = tiny_params_dict()
    for args, kind, expected in (
        (["--jobs", "0"], "local", "--jobs 0: expected a positive number"),
        ([], "cloud", "executor.kind: value 'cloud' is not allowed, expected one of ['local', 'slurm']"),
    ):
        params["executor"] = {"kind": kind}
        (root / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
        proc = subprocess.run(["miad", "repro", *args], cwd=root, capture_output=True, text=True, env=_env())
        assert proc.returncode == 2, proc.stderr
        assert expected in proc.stderr
    assert not (root / "dvc.lock").exists()


@pytest.mark.slow
def test_pipeline_slice_with_two_jobs_matches_plain_dvc_repro(native_slice: Path, tmp_path: Path) -> None:
    repo = prepare_slice(tmp_path / "repo")
    run(["miad", "repro", "--executor", "local", "--jobs", "2", *TARGETS], repo)
    ours, native = slice_outputs(repo), slice_outputs(native_slice)
    assert ours.keys() == native.keys()
    differing = [path for path in ours if path != "dvc.lock" and ours[path] != native[path]]
    assert not differing
    assert _lock(repo) == _lock(native_slice)  # entry order: see launcher/record.reorder_lock
    # the executor section is out of every hash: changing it leaves every stage up to date
    params = yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))
    params["executor"] = {"kind": "slurm", "workers": 4, "slurm": {"cpus_per_task": 8}}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    assert "up to date" in run(["dvc", "status", *TARGETS], repo)
    assert "Running stage" not in run(["dvc", "repro", *TARGETS], repo)
