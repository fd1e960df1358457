"""What an executor runs (a Task: one command line) and what it reports back (an Outcome)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from miad.errors import MiadError

TAIL_LINES = 40  # lines of a failed task's log quoted in error messages


@dataclass(frozen=True)
class Task:
    """One command to run in `cwd`: a `miad ...` argv (so a container runtime can wrap it) or a shell line."""

    name: str  # shown in progress and errors: a stage name, or `<dataset> shard <split>/<n>`
    argv: tuple[str, ...]  # the command; a DVC stage's shell line is ("sh", "-c", cmd)
    cwd: Path
    env: dict[str, str] = field(default_factory=dict, hash=False)  # added to the submitting process's environment


@dataclass(frozen=True)
class Outcome:
    """How a finished task ended; `log_tail` is the end of its stdout and stderr (the Slurm log on Slurm)."""

    ok: bool
    returncode: int | None  # None: no exit code (killed, preempted, cancelled, node failure)
    log_tail: str
    state: str = ""  # Slurm's job state (COMPLETED, FAILED, PREEMPTED, CANCELLED, TIMEOUT, ...) or "exited"
    log_path: str = ""  # where the whole log is


class Job(Protocol):
    task: Task

    def done(self) -> bool: ...

    def outcome(self) -> Outcome: ...

    def cancel(self) -> None: ...


class Executor(Protocol):
    kind: str

    def submit(self, task: Task) -> Job: ...

    def submit_many(self, tasks: list[Task]) -> list[Job]: ...


class TaskError(MiadError, RuntimeError):
    """A task still failed after its retries; the message names it and quotes the end of its log."""

    def __init__(self, task: Task, outcome: Outcome, attempts: int) -> None:
        how = f"exit status {outcome.returncode}" if outcome.returncode is not None else f"Slurm state {outcome.state}"
        super().__init__(
            f"{task.name}: failed ({how}) after {attempts} attempt(s): {' '.join(task.argv)}\n"
            f"--- end of its log ({outcome.log_path}) ---\n{outcome.log_tail}"
        )
        self.task, self.outcome = task, outcome


def tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def read_tail(path: Path, lines: int = TAIL_LINES) -> str:
    try:
        return tail(path.read_text(encoding="utf-8", errors="replace"), lines)
    except FileNotFoundError:
        return f"(no log at {path})"
