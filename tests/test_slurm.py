"""On a real one-node Slurm cluster (munged, slurmctld, slurmd started by the session fixture): the pipeline slice
through Slurm gives the local run's bytes, a cancelled render task is named and a rerun completes the same tree,
and a failing job's own Slurm log reaches the command's error message."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import tiny_params_dict
from tests.dvc_toy import make_toy
from tests.pipeline_slice import BIN, SCENARIO, TARGETS, prepare_slice, run, slice_outputs
from tests.slurm_cluster import slurm_cluster, unusable_reason

pytestmark = pytest.mark.slow

SLURM_EXECUTOR = {  # one CPU and 1 GB per task, so the 2-CPU test node runs two at once
    "kind": "slurm",
    "retries": 0,
    "poll_seconds": 0.5,
    "slurm": {"cpus_per_task": 1, "mem_gb": 1.0, "time_min": 15},
}


@pytest.fixture(scope="session")
def slurm_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The environment (SLURM_CONF) of a cluster running for the whole session."""
    reason = unusable_reason()
    if reason:
        pytest.skip(reason)
    with slurm_cluster(tmp_path_factory.mktemp("slurm")) as env:
        yield env


def _with_executor(repo: Path, executor: dict) -> None:
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text(encoding="utf-8"))
    params["executor"] = executor
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


def _popen(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    full = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **env}
    return subprocess.Popen(cmd, cwd=cwd, env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_pipeline_slice_through_slurm_matches_the_local_run(
    slurm_env: dict[str, str], native_slice: Path, tmp_path: Path
) -> None:
    repo = prepare_slice(tmp_path / "repo")
    _with_executor(repo, SLURM_EXECUTOR)
    log = run(["miad", "repro", "--executor", "slurm", "--jobs", "4", *TARGETS], repo, slurm_env)
    assert "5 ran" in log
    ours, native = slice_outputs(repo), slice_outputs(native_slice)
    assert ours.keys() == native.keys()
    assert not [path for path in ours if path != "dvc.lock" and ours[path] != native[path]]
    assert yaml.safe_load(ours["dvc.lock"]) == yaml.safe_load(native["dvc.lock"])
    jobs = list((repo / ".slurm" / "logs").glob("*/*_result.pkl"))
    assert len(jobs) >= 4 + 2 + 2  # four render shards (one array), two trainings, two evaluations
    assert "up to date" in run(["dvc", "status", *TARGETS], repo)


def _shard_job_running(repo: Path) -> str:
    """The Slurm job (`<array>_<task>`) of a `miad render --shard` process running from `repo`, or ""."""
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if b"--shard" not in argv or Path(os.readlink(proc / "cwd")).resolve() != repo.resolve():
                continue
            env = dict(line.split(b"=", 1) for line in (proc / "environ").read_bytes().split(b"\0") if b"=" in line)
        except OSError:  # not ours to read, or it ended meanwhile
            continue
        array, task = env.get(b"SLURM_ARRAY_JOB_ID"), env.get(b"SLURM_ARRAY_TASK_ID")
        return f"{array.decode()}_{task.decode()}" if array and task else env.get(b"SLURM_JOB_ID", b"").decode()
    return ""


def _cancel_a_running_task(env: dict[str, str], repo: Path) -> str:
    """scancel one of `repo`'s render tasks once its shard command runs (its shard not yet written). Not earlier:
    submitit's own process ignores SIGTERM (Slurm's warning before a kill), so a task cancelled before it started
    the command could still start it and finish the shard within KillWait, and rightly count as done."""
    victim, deadline = "", time.monotonic() + 120
    while not victim and time.monotonic() < deadline:
        victim = _shard_job_running(repo)
        time.sleep(0.1)
    assert victim, f"no render shard command from {repo} started on Slurm"
    subprocess.run(["scancel", victim], env={**os.environ, **env}, check=True)
    return victim


def _job_state(env: dict[str, str], job_id: str) -> str:
    out = subprocess.run(["scontrol", "show", "job", "-o", job_id], env={**os.environ, **env}, capture_output=True)
    return " ".join(w for w in out.stdout.decode().split() if w.startswith(("JobState=", "RunTime=", "ExitCode=")))


def _dataset_tree(repo: Path) -> dict[str, bytes]:
    files = _tree(repo / "renders" / "main" / SCENARIO)
    return {k: v for k, v in files.items() if not k.endswith("provenance.json")}


@pytest.mark.parametrize("retries", [0, 1])
def test_cancelled_render_task_is_retried_or_named_and_the_tree_is_identical(
    slurm_env: dict[str, str], native_slice: Path, tmp_path: Path, retries: int
) -> None:
    """retries 0: the command fails naming the cancelled shard, a rerun completes it; retries 1: the same command
    resubmits the task and succeeds. Either way the dataset equals the local run's, byte for byte."""
    repo = prepare_slice(tmp_path / "repo")
    _with_executor(repo, {**SLURM_EXECUTOR, "retries": retries})
    cmd = ["miad", "render", "--scenario", SCENARIO, "--renders", "renders", "--no-progress"]
    proc = _popen(cmd, repo, slurm_env)
    victim = _cancel_a_running_task(slurm_env, repo)
    _, stderr = proc.communicate(timeout=300)
    seen = f"{stderr}\ncancelled job {victim}: {_job_state(slurm_env, victim)}"
    if retries:
        assert proc.returncode == 0, seen
        assert "CANCELLED, retrying (1/1)" in stderr, seen
    else:
        assert proc.returncode == 2, seen
        assert "Slurm state CANCELLED" in stderr and "shard" in stderr
        run(cmd, repo, slurm_env)  # the rerun renders what is missing
    assert _dataset_tree(repo) == _dataset_tree(native_slice)


def test_a_failing_job_reports_its_slurm_log(slurm_env: dict[str, str], tmp_path: Path) -> None:
    root = make_toy(tmp_path / "toy", fail=True)
    params = tiny_params_dict()
    params["executor"] = SLURM_EXECUTOR
    (root / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    proc = _popen(["miad", "repro", "--executor", "slurm", "--jobs", "2"], root, slurm_env)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 2, stderr
    assert "stage 'c' failed" in stderr
    assert "the toy stage broke on purpose" in stderr  # written by the job, read back from its Slurm log
    assert str(root / ".slurm" / "logs") in stderr  # where the whole log is
    assert set(yaml.safe_load((root / "dvc.lock").read_text())["stages"]) == {"a", "b", "e"}


def test_sigterm_to_miad_repro_cancels_its_slurm_jobs(slurm_env: dict[str, str], tmp_path: Path) -> None:
    """The launcher stopped while a stage runs as a Slurm job: the job is scancelled (squeue empty), the finished
    stage stays recorded, and the next run completes."""
    from tests.test_interrupt import make_project, recorded, slow_running, wait_for

    root = make_project(tmp_path / "toy")
    params = tiny_params_dict()
    params["executor"] = SLURM_EXECUTOR
    (root / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    env = {**slurm_env, "TOY_SLEEP": "300"}
    full = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **env}
    launcher = subprocess.Popen(
        ["miad", "repro", "--executor", "slurm", "--jobs", "2"],
        cwd=root,
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    slow_running(root)
    os.killpg(launcher.pid, signal.SIGTERM)
    out, _ = launcher.communicate(timeout=120)
    assert launcher.returncode == 128 + signal.SIGTERM, out
    assert "cancelling 1 running stage(s): slow" in out

    def queue() -> str:
        return subprocess.run(["squeue", "-h", "-o", "%i %j %T"], env=full, capture_output=True, text=True).stdout

    wait_for(lambda: not queue().strip(), "squeue to be empty", 60)
    assert recorded(root) == ["fast"]
    run(["miad", "repro", "--executor", "slurm", "--jobs", "2"], root, {**slurm_env, "TOY_SLEEP": "0"})
    assert set(recorded(root)) == {"fast", "slow", "after"}
