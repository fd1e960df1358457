"""Warm workers (miad.launcher.warm): stage commands forked from a server with torch and the methods imported give
the bytes a cold `miad` process gives, whatever ran in the same server before them; cancel and close leave nothing.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from miad.executors.base import Task
from miad.executors.local import LocalExecutor, LocalJob, group_processes
from miad.executors.local import session_processes as live_session_processes
from miad.launcher.warm import WarmExecutor, WarmJob, miad_argv
from miad.numeric_env import PROVENANCE_NAME
from tests.conftest import tiny_params_dict
from tests.pipeline_slice import BIN, METHODS, SCENARIO, TARGETS, prepare_slice, slice_outputs

SHELL = "/bin/sh"


@pytest.fixture
def on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The venv's `miad` first on PATH, as `miad repro` (a venv process) has it."""
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params_dict()), encoding="utf-8")
    return root


def shell_task(name: str, line: str, cwd: Path, **env: str) -> Task:
    return Task(name, (SHELL, "-c", line), cwd, {"DVC_STAGE": name, **env})


def slow_params(root: Path) -> Path:
    """A params file YAML takes tens of seconds to parse: a warm `miad params` that is still running when cancelled."""
    path = root / "slow.yaml"
    path.write_text("a: [" + "1, " * 1_000_000 + "1]\n", encoding="utf-8")
    return path


def session_processes(sid: int, timeout: float = 10.0, *, group: bool = False) -> list[int]:
    """Live processes of session `sid` (`group`: of process group `sid`) after up to `timeout` seconds (empty
    once all are gone)."""
    scan = group_processes if group else live_session_processes
    end = time.monotonic() + timeout
    while True:
        left = scan(sid)
        if not left or time.monotonic() > end:
            return left
        time.sleep(0.1)


def test_which_tasks_may_run_warm() -> None:
    here = Path(".")
    commands = ("train", "evaluate")
    assert miad_argv(shell_task("t", "miad train --method ae --out m", here), commands) == [
        "train", "--method", "ae", "--out", "m",
    ]  # fmt: skip
    assert miad_argv(Task("t", ("miad", "evaluate", "--x"), here), commands) == ["evaluate", "--x"]
    bash = Task("t", ("/bin/bash", "--noprofile", "--norc", "-c", "miad evaluate --x"), here)  # DVC's, SHELL=bash
    assert miad_argv(bash, commands) == ["evaluate", "--x"]
    for line in (
        "miad render --scenario witness_mark",  # not a preloaded command: Blender
        "miad train --out m && touch done",
        "miad train --out m > log",
        "OMP_NUM_THREADS=1 miad train",
        "miad train --out $OUT",
        "set -e\nmiad train\nmiad evaluate",
        "python -m miad.cli train",
    ):
        assert miad_argv(shell_task("t", line, here), commands) is None, line


def test_warm_commands_cold_fallbacks_exit_status_and_logs(project: Path, on_path: None) -> None:
    with WarmExecutor(project, log_dir=project / "logs", commands=("params",)) as executor:
        first = executor.submit(shell_task("params", "miad params", project))
        assert isinstance(first, WarmJob)
        outcome = first.outcome()
        assert outcome.ok and outcome.returncode == 0 and first.warm
        assert '"seed"' in Path(outcome.log_path).read_text()  # stdout went to the task's log
        assert executor.ready["loaded_before_pin"] == []  # pinned before numpy, cv2 and torch loaded

        failing = executor.submit(shell_task("bad", "miad params --params missing.yaml", project))
        outcome = failing.outcome()
        assert isinstance(failing, WarmJob) and failing.warm
        assert outcome.returncode == 2 and "missing.yaml: params file not found" in outcome.log_tail

        chained = executor.submit(shell_task("chain", "miad params && echo chained", project))
        assert isinstance(chained, LocalJob) and chained.outcome().ok and "chained" in chained.outcome().log_tail

        other_env = executor.submit(shell_task("env", "miad params", project, OMP_WAIT_POLICY="ACTIVE"))
        assert isinstance(other_env, LocalJob) and other_env.outcome().ok  # libraries would load differently

        params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
        params["smoke"]["numeric"]["threads"] = 1
        (project / "one_thread.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
        other_pin = executor.submit(shell_task("pin", "miad params --params one_thread.yaml", project))
        outcome = other_pin.outcome()
        assert isinstance(other_pin, WarmJob) and other_pin.cold_reason == "environment"  # exec'd its shell line
        assert outcome.ok and '"threads": 1' in Path(outcome.log_path).read_text()


def test_cancel_kills_the_command_and_close_leaves_no_process(project: Path, on_path: None) -> None:
    slow = slow_params(project)
    executor = WarmExecutor(project, log_dir=project / "logs", commands=("params",))
    try:
        job = executor.submit(shell_task("slow", f"miad params --params {slow.name}", project))
        executor.wait_ready()
        while job.pid is None:
            time.sleep(0.05)
        job.cancel()
        assert job.done() and job.outcome().returncode == -signal.SIGTERM
        assert session_processes(job.pid, timeout=1, group=True) == []  # its process group is gone too

        running = [
            executor.submit(shell_task(f"slow{i}", f"miad params --params {slow.name}", project)) for i in (1, 2)
        ]
        cold = executor.submit(shell_task("cold", "sleep 60", project))
        while any(job.pid is None for job in running):
            time.sleep(0.05)
        sid = os.getsid(executor._proc.pid)  # type: ignore[union-attr]
        assert len(session_processes(sid, timeout=0)) == 3  # the server and its two children
    finally:
        executor.close()
    assert session_processes(sid) == []
    assert all(job.done() and not job.outcome().ok for job in running)
    assert cold.done()


def test_server_loads_libraries_in_a_cold_process_order(tmp_path: Path, on_path: None) -> None:
    """The shared libraries the server loads come in the order a cold `miad train` loads them (the first copy
    of a library to load is the one later ones bind to), from the same files; sys.path is a cold process's."""
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "sitecustomize.py").write_text(PROBE, encoding="utf-8")
    root = tmp_path / "project"
    root.mkdir()
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params_dict()), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(probe), os.environ.get("PYTHONPATH", "")])}
    cold = subprocess.run(  # stops at its missing renders, after every import (train imports methods first)
        [SHELL, "-c", "miad train --method ae --scenario witness_mark --out m"],
        cwd=root, env={**env, "PROBE_OUT": str(tmp_path / "cold.json")}, capture_output=True, check=False,
    )  # fmt: skip
    assert cold.returncode != 0 and (tmp_path / "cold.json").is_file(), cold.stderr
    path0 = str(Path(shutil.which("miad", path=env["PATH"]) or "").resolve().parent)
    warm = subprocess.run(
        [sys.executable, "-P", "-c", f"import sys; sys.path.insert(0, {path0!r}); "
         f"from miad.launcher.zygote import preload; preload({str(root)!r})"],
        cwd=root, env={**env, "PROBE_OUT": str(tmp_path / "warm.json")}, capture_output=True, check=False,
    )  # fmt: skip
    assert warm.returncode == 0, warm.stderr
    cold_run, warm_run = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("cold", "warm"))
    assert warm_run["path"] == cold_run["path"]
    cold_libs, warm_libs = cold_run["libs"], warm_run["libs"]
    assert "torch" in " ".join(cold_libs) and set(cold_libs) <= set(warm_libs)  # same files
    assert [lib for lib in warm_libs if lib in cold_libs] == cold_libs  # same order


PROBE = """
import atexit, ctypes, json, os, sys

def _dump():
    names = []
    class Info(ctypes.Structure):
        _fields_ = [("addr", ctypes.c_void_p), ("name", ctypes.c_char_p)]
    callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(Info), ctypes.c_size_t, ctypes.c_void_p)
    def each(info, size, data):
        names.append((info.contents.name or b"").decode())
        return 0
    ctypes.CDLL(None).dl_iterate_phdr(callback(each), None)
    libs = [n for n in names if "site-packages" in n]
    with open(os.environ["PROBE_OUT"], "w") as handle:
        json.dump({"libs": libs, "path": [p for p in sys.path if "probe" not in p]}, handle)

if os.environ.get("PROBE_OUT"):
    atexit.register(_dump)
"""


# --- the slice: train and evaluate of two methods, warm, against the cold reference run


def _stage_commands(repo: Path) -> dict[str, str]:
    lock = yaml.safe_load((repo / "dvc.lock").read_text(encoding="utf-8"))
    return {name: entry["cmd"] for name, entry in lock["stages"].items()}


def _torch_outputs(repo: Path) -> dict[str, bytes]:
    """Every file the train and evaluate stages write, provenance sidecars left out (compared on their own)."""
    paths = [*repo.glob("models/**/*"), *repo.glob("results/**/*")]
    return {
        p.relative_to(repo).as_posix(): p.read_bytes()
        for p in sorted(paths)
        if p.is_file() and not p.name.endswith(PROVENANCE_NAME) and p.name != ".gitignore"  # DVC's, not theirs
    }


def _provenance(repo: Path) -> dict[str, dict]:
    """What each train/evaluate process reported of its numeric state, CPU time-independent parts only."""
    found = {}
    for path in sorted([*repo.glob(f"models/**/{PROVENANCE_NAME}"), *repo.glob(f"results/**/*{PROVENANCE_NAME}")]):
        run = json.loads(path.read_text(encoding="utf-8"))["runs"][-1]
        found[path.relative_to(repo).as_posix()] = run
    return found


@pytest.mark.slow
def test_stages_back_to_back_in_one_server_give_cold_bytes_in_either_order(
    native_slice: Path, tmp_path: Path, on_path: None
) -> None:
    """Train of one method then the other, evaluate likewise, in one server, in both orders: every output equals
    the cold `dvc repro` run's, and each process's numeric state (provenance) equals a cold process's."""
    commands = _stage_commands(native_slice)
    reference = _torch_outputs(native_slice)
    assert len(reference) > 10
    orders = {"forward": list(METHODS), "backward": list(reversed(METHODS))}
    with WarmExecutor(native_slice, log_dir=tmp_path / "logs") as executor:
        for label, methods in orders.items():
            repo = tmp_path / label
            shutil.copytree(native_slice, repo, ignore=shutil.ignore_patterns("models", "results"))
            for kind in ("train", "evaluate"):
                for method in methods:
                    name = f"{kind}@{method}-{SCENARIO}"
                    job = executor.submit(shell_task(name, commands[name], repo))
                    outcome = job.outcome()
                    assert outcome.ok, outcome.log_tail
                    assert isinstance(job, WarmJob) and job.warm, name
            ours = _torch_outputs(repo)
            assert ours.keys() == reference.keys(), label
            assert [path for path in ours if ours[path] != reference[path]] == [], label
            cold_state, warm_state = _provenance(native_slice), _provenance(repo)
            assert cold_state.keys() == warm_state.keys() and cold_state
            assert warm_state == cold_state, label


@pytest.mark.slow
def test_slice_through_the_launcher_warm_matches_plain_dvc_repro(
    native_slice: Path, tmp_path: Path, on_path: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from miad.launcher.run import launch

    repo = prepare_slice(tmp_path / "repo")
    monkeypatch.chdir(repo)  # DVC reads targets relative to here, as `miad repro` runs in the project
    # an earlier in-process DVC command of this pytest session may have left its log handler on a stream pytest
    # has closed since ("failed to log"); here DVC logs to the session's own handlers, as a fresh process would
    monkeypatch.setattr(logging.getLogger("dvc"), "handlers", [])
    with WarmExecutor(repo, log_dir=tmp_path / "logs") as executor:
        report = launch(repo, TARGETS, executor=executor, jobs=1, coordinator=LocalExecutor(), say=lambda _: None)
        warm = [job.task.name for job in executor._jobs.values() if job.warm]
    assert sorted(warm) == sorted(f"{kind}@{m}-{SCENARIO}" for kind in ("train", "evaluate") for m in METHODS)
    assert len(report.ran) == 5 and not report.failed
    ours, native = slice_outputs(repo), slice_outputs(native_slice)
    assert ours.keys() == native.keys()
    assert [path for path in ours if ours[path] != native[path]] == []  # dvc.lock included
