"""Run a batch of independent tasks on an executor: bounded concurrency, bounded retries, a progress bar."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from tqdm import tqdm

from miad.executors.base import Executor, Job, Outcome, Task, TaskError


def run_tasks(
    executor: Executor,
    tasks: list[Task],
    *,
    retries: int,
    limit: int,
    finished: Callable[[Task], bool] = lambda task: True,
    poll_seconds: float = 1.0,
    desc: str = "tasks",
    unit: str = "task",
    progress: bool = True,
) -> None:
    """Run every task, at most `limit` at once; a task counts as done only when it exited 0 and `finished(task)`
    holds (a render shard: spec hash and every sha256). A failed one is resubmitted up to `retries` times; then
    TaskError names the first task that kept failing, with the end of its log. The others run to the end first."""
    attempts = dict.fromkeys(tasks, 0)
    waiting: list[Task] = list(tasks)
    running: list[Job] = []
    failed: list[TaskError] = []
    with tqdm(total=len(tasks), desc=desc, unit=unit, disable=not progress, dynamic_ncols=True) as bar:
        try:
            while waiting or running:
                free = max(0, limit - len(running))
                batch, waiting = waiting[:free], waiting[free:]
                for task in batch:
                    attempts[task] += 1
                running.extend(executor.submit_many(batch) if batch else [])
                time.sleep(poll_seconds if running else 0)
                still: list[Job] = []
                for job in running:
                    if not job.done():
                        still.append(job)
                        continue
                    outcome = job.outcome()
                    if outcome.ok and not finished(job.task):
                        outcome = Outcome(
                            False,
                            outcome.returncode,
                            outcome.log_tail + "\n(output incomplete)",
                            "INCOMPLETE",
                            outcome.log_path,
                        )
                    if outcome.ok:
                        bar.update(1)
                    elif attempts[job.task] <= retries:
                        note = f"{outcome.state or 'failed'}, retrying ({attempts[job.task]}/{retries})"
                        bar.write(f"{job.task.name}: {note}", file=sys.stderr)
                        waiting.append(job.task)
                    else:
                        failed.append(TaskError(job.task, outcome, attempts[job.task]))
                running = still
        except BaseException:  # interrupted (Ctrl-C, SIGTERM) or broken: no task of ours may outlive us
            cancel_all(running)
            raise
    if failed:
        raise failed[0]


def cancel_all(jobs: list[Job]) -> None:
    """Cancel every job that is still running (local process groups stopped, Slurm jobs scancelled)."""
    for job in jobs:
        if not job.done():
            job.cancel()
