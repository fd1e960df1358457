"""One `miad repro` per workspace, and what it leaves behind when it dies: a lock and a record of its jobs.

While a launch runs it holds an exclusive lock (`flock`, released by the kernel however the process ends) and keeps
`.dvc/tmp/miad-repro.json` up to date: its pid, command line, start time, and each running stage's process group
(local), warm server session (a stage forked by miad.launcher.warm) or job id (Slurm). A second launch in the same
workspace refuses at once and names the first. A launch that finds the record but not the lock knows the previous
one was killed (`kill -9`, a lost terminal): it stops the process groups that are still there (checked to be that
stage's, by its DVC_STAGE), the warm server sessions still there (checked to hold this project's server: a warm
server ends its commands itself when its launcher dies, unless it was killed too), and cancels the Slurm jobs, says
so, and goes on; DVC's own locks need nothing (its lock file is released by the kernel, its rwlock ignores dead
pids).
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from miad.atomic import write_json_atomic
from miad.errors import MiadError
from miad.executors.local import group_alive, process_cmdline, session_processes, stop_group, stop_session

STATE_NAME = "miad-repro.json"
LOCK_NAME = "miad-repro.lock"


class WorkspaceBusyError(MiadError, RuntimeError):
    """Another `miad repro` is running in this workspace."""


@dataclass
class RunRecord:
    """What a running launch has out in the world, kept on disk so that the next launch can clean up after it."""

    pid: int
    argv: list[str]
    started: str
    groups: dict[str, int] = field(default_factory=dict)  # stage -> local process group id
    sessions: dict[str, int] = field(default_factory=dict)  # stage -> the warm server session that forked it
    slurm: dict[str, str] = field(default_factory=dict)  # stage -> Slurm job id


class NotAProjectError(MiadError, FileNotFoundError):
    """`miad repro` outside a DVC project."""


def _tmp_dir(root: Path) -> Path:
    if not (root / ".dvc").is_dir():
        raise NotAProjectError(f"{root}: not a DVC project (no .dvc folder); run `miad repro` in the project's root")
    folder = root / ".dvc" / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _is_stage_group(pgid: int, stage: str) -> bool:
    """Whether process group `pgid` still runs `stage` (its leader's environment names it), not a reused pid."""
    try:
        environ = Path(f"/proc/{pgid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"DVC_STAGE={stage}".encode() in environ and group_alive(pgid)


def _is_warm_session(sid: int, root: Path) -> bool:
    """Whether session `sid` still holds a process of this project's warm server (the server or a command it forked:
    a fork keeps the server's command line), not a reused id."""
    for pid in session_processes(sid):
        argv = process_cmdline(pid)
        if "miad.launcher.zygote" in argv and "--root" in argv and argv[argv.index("--root") + 1 :][:1] == [str(root)]:
            return True
    return False


class RunLock:
    """Hold the workspace for one launch; `track` and `untrack` keep the record of its running jobs current."""

    def __init__(self, root: Path, say: Any = print) -> None:
        self.root = Path(root)
        self.folder = _tmp_dir(root)
        self.state = self.folder / STATE_NAME
        self.say = say
        self.handle: Any = None
        self.record = RunRecord(os.getpid(), list(sys.argv), time.strftime("%Y-%m-%d %H:%M:%S"))

    def __enter__(self) -> RunLock:
        self.handle = open(self.folder / LOCK_NAME, "a+")  # held until __exit__
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.close()
            raise WorkspaceBusyError(self._describe_running()) from None
        previous = self._read()
        if previous is not None:
            self._recover(previous)
        self._write()
        return self

    def __exit__(self, *exc: object) -> None:
        self.state.unlink(missing_ok=True)
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()

    def track(self, stage: str, job: Any) -> None:
        """Note a started stage's process group, warm server session or Slurm job id."""
        if hasattr(job, "pgid"):
            self.record.groups[stage] = job.pgid
        elif hasattr(job, "session"):
            self.record.sessions[stage] = job.session
        elif hasattr(job, "job_id"):
            self.record.slurm[stage] = job.job_id
        self._write()

    def untrack(self, stage: str) -> None:
        self.record.groups.pop(stage, None)
        self.record.sessions.pop(stage, None)
        self.record.slurm.pop(stage, None)
        self._write()

    def _write(self) -> None:
        write_json_atomic(self.state, asdict(self.record))

    def _read(self) -> RunRecord | None:
        if not self.state.is_file():
            return None
        try:
            return RunRecord(**json.loads(self.state.read_text(encoding="utf-8")))
        except (ValueError, TypeError):
            self.say(f"miad repro: ignoring an unreadable {self.state} (a previous run's record)")
            return None

    def _describe_running(self) -> str:
        other = self._read()
        who = f"pid {other.pid}, started {other.started}: {' '.join(other.argv)}" if other else "pid unknown"
        return (
            f"another `miad repro` is running in this workspace ({who}); wait for it to finish, or stop it "
            f"(Ctrl-C in its terminal, or `kill {other.pid if other else 'PID'}`: its running stages are cancelled)"
        )

    def _recover(self, previous: RunRecord) -> None:
        """Stop what a killed launch left running; say what was done."""
        groups = [(stage, pgid) for stage, pgid in previous.groups.items() if _is_stage_group(pgid, stage)]
        for _, pgid in groups:
            stop_group(pgid)
        sessions = {sid for sid in previous.sessions.values() if _is_warm_session(sid, self.root)}
        groups += [(stage, sid) for stage, sid in previous.sessions.items() if sid in sessions]
        for sid in sessions:
            stop_session(sid)
        jobs = list(previous.slurm.values())
        if jobs:
            subprocess.run(["scancel", *jobs], capture_output=True, check=False)
        self.say(
            f"miad repro: a previous run (pid {previous.pid}, started {previous.started}) ended without cleaning up; "
            f"stopped {len(groups)} stage(s) it left running"
            + (f" ({', '.join(s for s, _ in groups)})" if groups else "")
            + (f", cancelled Slurm job(s) {', '.join(jobs)}" if jobs else "")
            + ". Its finished stages are recorded; the rest run now."
        )
