"""The local executor: each task a child process on this machine, its output captured in a log file."""

from __future__ import annotations

import os
import subprocess
import tempfile
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
            )

    def done(self) -> bool:
        return self.proc.poll() is not None

    def outcome(self) -> Outcome:
        code = self.proc.wait()
        return Outcome(code == 0, code, read_tail(self.log_path), "exited", str(self.log_path))

    def cancel(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()


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
