"""`miad repro` stopped by Ctrl-C, SIGTERM or `kill -9`: nothing keeps running, finished stages stay recorded,
cancelled ones are not, a second launch in the same workspace refuses, and the next run ends byte-identical."""

from __future__ import annotations

import _thread
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from miad.executors.base import Task
from miad.executors.local import LocalExecutor, group_alive, session_processes, stop_session
from miad.executors.wait import run_tasks
from tests.dvc_toy import outputs
from tests.pipeline_slice import BIN, SCENARIO, TARGETS, prepare_slice, run, slice_outputs

# fast and slow side by side, then `after` on slow; slow writes its process group id first, then sleeps $TOY_SLEEP
# (set by every run here; DVC would read ${...} as its own interpolation)
STAGES = {
    "fast": {"cmd": "mkdir -p out && echo fast > out/fast.txt", "outs": ["out/fast.txt"]},
    "slow": {
        "cmd": "echo $$ > slow.pid && sleep $TOY_SLEEP && mkdir -p out && echo slow > out/slow.txt",
        "outs": ["out/slow.txt"],
    },
    "after": {"cmd": "cat out/slow.txt > out/after.txt", "deps": ["out/slow.txt"], "outs": ["out/after.txt"]},
}


def make_project(root: Path) -> Path:
    root.mkdir(parents=True)
    run(["git", "init", "-q"], root)
    run(["dvc", "init", "-q"], root)
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": STAGES}, sort_keys=False), encoding="utf-8")
    return root


def _env(sleep: int) -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "TOY_SLEEP": str(sleep)}


def _as_a_terminal_job() -> None:
    """Ctrl-C and Ctrl-\\ as a terminal's foreground job gets them. A shell without job control starts its
    background jobs (`pytest &`, a CI runner under nohup) with SIGINT and SIGQUIT ignored, and children inherit
    that: Python then installs no KeyboardInterrupt handler, and a Ctrl-C test would fail for a reason no user meets."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def start(root: Path, sleep: int = 120) -> subprocess.Popen:
    """`miad repro --jobs 2` in a session of its own (as a terminal's foreground job is), output captured."""
    return subprocess.Popen(
        ["miad", "repro", "--jobs", "2"],
        cwd=root,
        env=_env(sleep),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=_as_a_terminal_job,
    )


def wait_for(condition, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def recorded(root: Path) -> list[str]:
    """The stages dvc.lock records; none while DVC is still writing it (it truncates, then writes)."""
    lock = root / "dvc.lock"
    try:
        data = yaml.safe_load(lock.read_text(encoding="utf-8")) if lock.is_file() else None
    except yaml.YAMLError:
        data = None
    return list((data or {}).get("stages", {}))


def slow_running(root: Path) -> int:
    """Wait until `slow` runs and `fast` is recorded; the slow stage's process group id."""
    pid_file = root / "slow.pid"
    wait_for(lambda: pid_file.is_file() and pid_file.read_text().strip() and "fast" in recorded(root), "slow to start")
    return int(pid_file.read_text())


def finish_and_compare(root: Path, reference: Path) -> str:
    log = run(["miad", "repro", "--jobs", "2"], root, {"TOY_SLEEP": "0"})
    assert outputs(root) == outputs(reference)
    assert yaml.safe_load((root / "dvc.lock").read_text()) == yaml.safe_load((reference / "dvc.lock").read_text())
    assert not (root / ".dvc" / "tmp" / "miad-repro.json").exists()
    return log


def uninterrupted(tmp_path: Path) -> Path:
    reference = make_project(tmp_path / "reference")
    run(["miad", "repro", "--jobs", "2"], reference, {"TOY_SLEEP": "0"})
    return reference


def test_sigterm_and_ctrl_c_cancel_the_running_stage_and_keep_the_finished_one(tmp_path: Path) -> None:
    reference = uninterrupted(tmp_path)
    for name, sig in (("term", signal.SIGTERM), ("int", signal.SIGINT)):
        root = make_project(tmp_path / name)
        launcher = start(root)
        slow = slow_running(root)
        os.killpg(launcher.pid, sig)  # a terminal's Ctrl-C reaches the whole foreground group
        out, _ = launcher.communicate(timeout=60)
        assert launcher.returncode == 128 + sig, out
        assert "cancelling 1 running stage(s): slow" in out and "Run it again to resume" in out
        assert not group_alive(slow), "the cancelled stage's processes are still running"
        assert recorded(root) == ["fast"]  # finished: recorded; cancelled and never started: not
        assert not (root / ".dvc" / "tmp" / "miad-repro.json").exists()
        finish_and_compare(root, reference)


def test_after_kill_9_the_next_run_stops_the_leftovers_and_ends_identical(tmp_path: Path) -> None:
    reference = uninterrupted(tmp_path)
    root = make_project(tmp_path / "killed")
    launcher = start(root)
    slow = slow_running(root)
    launcher.kill()
    launcher.communicate(timeout=30)
    assert group_alive(slow)  # a stage runs in a session of its own: it outlives a killed launcher
    log = finish_and_compare(root, reference)
    assert "ended without cleaning up; stopped 1 stage(s) it left running (slow)" in log
    assert not group_alive(slow)


def test_a_second_launch_in_the_same_workspace_refuses_at_once_naming_the_first(tmp_path: Path) -> None:
    root = make_project(tmp_path / "busy")
    first = start(root)
    try:
        slow_running(root)
        began = time.monotonic()
        second = subprocess.run(
            ["miad", "repro"], cwd=root, env=_env(0), capture_output=True, text=True, check=False, timeout=60
        )
        assert second.returncode == 2 and time.monotonic() - began < 30
        assert f"another `miad repro` is running in this workspace (pid {first.pid}" in second.stderr
    finally:
        os.killpg(first.pid, signal.SIGTERM)
        first.communicate(timeout=60)
    assert first.returncode == 128 + signal.SIGTERM


def test_an_interrupted_batch_of_tasks_cancels_every_running_task(tmp_path: Path) -> None:
    """The render fan-out's loop (run_tasks): Ctrl-C or SIGTERM inside it stops every task it started."""
    tasks = [Task(f"t{k}", ("sh", "-c", f"echo $$ > {tmp_path}/t{k}.pid && sleep 120"), tmp_path) for k in range(3)]
    pids = [tmp_path / f"t{k}.pid" for k in range(3)]

    def interrupt_when_started() -> None:
        wait_for(lambda: all(p.is_file() and p.read_text().strip() for p in pids), "tasks to start", 60)
        _thread.interrupt_main()

    # interrupt_main() raises KeyboardInterrupt only where Python handles SIGINT (see _as_a_terminal_job)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    threading.Thread(target=interrupt_when_started, daemon=True).start()
    try:
        run_tasks(LocalExecutor(tmp_path / "logs"), tasks, retries=0, limit=3, poll_seconds=0.1, progress=False)
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("run_tasks was not interrupted")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert not [p for p in pids if group_alive(int(p.read_text()))]


def _slow_ae_params(repo: Path, epochs: int) -> str:
    """The slice's params with AE trained for `epochs` (a warm stage that runs long enough to be killed); the
    original text, to put back."""
    path = repo / "params.yaml"
    original = path.read_text(encoding="utf-8")
    params = yaml.safe_load(original)
    params["smoke"]["train"]["ae"]["epochs"] = epochs
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return original


def _warm_stage_running(repo: Path, stage: str) -> int:
    """Wait until the launcher's record shows `stage` forked by the warm server; the server's session id."""
    state = repo / ".dvc" / "tmp" / "miad-repro.json"

    def sessions() -> dict[str, int]:
        try:
            return json.loads(state.read_text(encoding="utf-8")).get("sessions", {})
        except (OSError, ValueError):
            return {}

    wait_for(lambda: stage in sessions(), f"{stage} to run warm", timeout=300)
    return sessions()[stage]


@pytest.mark.slow
@pytest.mark.parametrize("server_killed_too", [False, True])
def test_kill_9_with_warm_workers_leaves_nothing_running_and_the_next_run_matches(
    native_slice: Path, tmp_path: Path, server_killed_too: bool
) -> None:
    """`kill -9` of the launcher while a stage runs in a warm worker: the server sees its launcher gone and ends the
    stage itself; if the server was killed too, its orphaned stage is stopped by the next run, which says so. Either
    way nothing is left running and the next run ends byte-identical to plain `dvc repro`. (The killed stage trains
    AE for many epochs, so it is still running when killed; the slice's own params are back before the next run.)"""
    repo = prepare_slice(tmp_path / "repo")
    original = _slow_ae_params(repo, epochs=100_000)
    launcher = subprocess.Popen(
        ["miad", "repro", "--no-pull", "--jobs", "1", *TARGETS],
        cwd=repo,
        env=_env(0),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    stage = f"train@ae-{SCENARIO}"
    try:
        sid = _warm_stage_running(repo, stage)
        # the server forks the stage once its own imports are done (seconds on a busy machine)
        wait_for(lambda: len(session_processes(sid)) >= 2, "the warm server to fork the stage", timeout=300)
        time.sleep(2)  # the forked command is well into training
        if server_killed_too:
            os.kill(sid, signal.SIGKILL)  # the server leads its session: its pid is the session id
        launcher.kill()
        launcher.communicate(timeout=30)
        if server_killed_too:
            time.sleep(2)
            assert session_processes(sid), "the forked stage outlives a killed server"
        else:
            wait_for(lambda: not session_processes(sid), "the warm server to end its stage and leave", timeout=60)
    except BaseException:  # leave no 100000-epoch training behind a failed test
        launcher.kill()
        state = repo / ".dvc" / "tmp" / "miad-repro.json"
        for leftover in json.loads(state.read_text()).get("sessions", {}).values() if state.is_file() else ():
            stop_session(leftover, grace_s=1.0)
        raise
    (repo / "params.yaml").write_text(original, encoding="utf-8")
    log = run(["miad", "repro", "--no-pull", "--jobs", "1", *TARGETS], repo)
    assert "ended without cleaning up" in log
    assert (f"stopped 1 stage(s) it left running ({stage})" in log) == server_killed_too, log
    assert not session_processes(sid)
    ours, native = slice_outputs(repo), slice_outputs(native_slice)
    assert [path for path in ours.keys() | native.keys() if ours.get(path) != native.get(path)] == []
