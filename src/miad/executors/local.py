"""The local executor: each task a child process on this machine, its output captured in a log file.

Each task runs in a process group (a session) of its own, so that cancelling it stops the whole command (a shell
and the `miad` it runs, and that command's own children) and a terminal's Ctrl-C reaches only the coordinator,
which then cancels its tasks in order instead of leaving them half-killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from miad.executors.base import Outcome, Task, read_tail


class LocalJob:
    """A running child process; stdout and stderr go to one log file."""

    def __init__(self, task: Task, log_dir: Path) -> None:
        self.task = task
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in task.name)
        self.log_path = Path(tempfile.mkstemp(prefix=f"{safe}-", suffix=".log", dir=log_dir)[1])
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                list(task.argv),
                cwd=task.cwd,
                env={**os.environ, **task.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pgid = self.proc.pid  # the session leader's pid is its process group id

    def done(self) -> bool:
        return self.proc.poll() is not None

    def outcome(self) -> Outcome:
        code = self.proc.wait()
        return Outcome(code == 0, code, read_tail(self.log_path), "exited", str(self.log_path))

    def cancel(self) -> None:
        """SIGTERM to the task's whole process group (a `miad` command cancels its own tasks on it), SIGKILL to
        whatever is left after CANCEL_GRACE_S; returns when the task's process has exited."""
        stop_group(self.pgid, reap=self.proc.poll)
        self.proc.wait()


CANCEL_GRACE_S = 20.0  # a cancelled command's time to cancel its own tasks (scancel, its children) and exit


def group_alive(pgid: int) -> bool:
    """Whether any process of process group `pgid` is left."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's group now: not ours to stop
        return False
    return True


def stop_group(pgid: int, grace_s: float = CANCEL_GRACE_S, reap: Callable[[], object] = lambda: None) -> None:
    """SIGTERM to process group `pgid`, then SIGKILL to what is still there after `grace_s`. `reap` collects the
    group's leader when it is our child (an exited child we have not waited for still counts as alive)."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        reap()
        if not group_alive(pgid):
            return
        os.killpg(pgid, sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            reap()
            if not group_alive(pgid):
                return
            time.sleep(0.05)


def _live_members(ident: int, column: int) -> list[int]:
    """Live processes (not zombies) whose /proc stat `column` (after the name: state, ppid, pgrp, session) is
    `ident`; empty where there is no /proc."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc") if os.path.isdir("/proc") else []):
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as handle:
                state = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(state[column]) == ident and state[0] != "Z":
            found.append(int(entry))
    return found


def session_processes(sid: int) -> list[int]:
    """Live processes (not zombies) of session `sid`."""
    return _live_members(sid, 3)


def group_processes(pgid: int) -> list[int]:
    """Live processes (not zombies) of process group `pgid`."""
    return _live_members(pgid, 2)


def process_cmdline(pid: int) -> list[str]:
    """A process's command line ([] when it is gone or unreadable)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def stop_session(sid: int, grace_s: float = CANCEL_GRACE_S) -> None:
    """Stop every process group of session `sid` (SIGTERM, then SIGKILL after `grace_s`)."""
    for pgid in sorted({group for pid in session_processes(sid) if (group := _group_of(pid)) is not None}):
        stop_group(pgid, grace_s)


def _group_of(pid: int) -> int | None:
    """The process group of `pid`, None once it has exited."""
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


class LocalExecutor:
    """Runs tasks as processes here; the caller decides how many run at once (`run_tasks`' limit)."""

    kind = "local"

    def __init__(self, log_dir: Path | None = None) -> None:
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="miad-local-logs-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)

    def submit(self, task: Task) -> LocalJob:
        return LocalJob(task, self.log_dir)

    def submit_many(self, tasks: list[Task]) -> list[LocalJob]:
        return [self.submit(t) for t in tasks]
