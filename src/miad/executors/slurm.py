"""The Slurm executor: each task an sbatch job (a job array when submitted together), through submitit.

submitit writes the job scripts and runs `run_command` on the compute node, so a task is still one command line
(a `miad ...` argv or a stage's shell line) and its stdout/stderr land in the task's Slurm log. Job states come
from `scontrol show job` (clusters without an accounting database have no `sacct`), results from submitit's files.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from miad.config import SlurmConfig
from miad.executors.base import Outcome, Task, read_tail, tail

FINISHED_STATES = {
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "PREEMPTED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "BOOT_FAIL",
    "DEADLINE",
}
LOST_AFTER = 30.0  # seconds after submission from which a job slurmctld does not know counts as lost


def run_command(argv: list[str], cwd: str, env: dict[str, str]) -> int:
    """Run on the compute node: the task's command, its output streamed into this job's Slurm log."""
    sys.stdout.flush()
    proc = subprocess.run(argv, cwd=cwd, env={**os.environ, **env}, check=False)
    if proc.returncode < 0:
        raise RuntimeError(f"command killed by signal {-proc.returncode}: {' '.join(argv)}")
    if proc.returncode != 0:
        raise RuntimeError(f"command exited with status {proc.returncode}: {' '.join(argv)}")
    return 0


def _job_key(fields: dict[str, str]) -> str:
    array, task = fields.get("ArrayJobId"), fields.get("ArrayTaskId")
    return f"{array}_{task}" if array and task and task.isdigit() else fields.get("JobId", "")


class SlurmStates:
    """Every job's state from one `scontrol show job` call, reread at most every `max_age` seconds (one call per
    poll, not one per job: a paper-scale dataset has hundreds of shard tasks)."""

    def __init__(self, max_age: float = 0.5) -> None:
        self.max_age, self.read_at, self.states = max_age, -1.0, {}

    def get(self, job_id: str, *, fresh: bool = False) -> str:
        """The job's state ("" when slurmctld no longer knows it)."""
        if fresh or time.monotonic() - self.read_at > self.max_age:
            out = subprocess.run(["scontrol", "show", "job", "-o"], capture_output=True, text=True, check=False)
            self.states = {}
            for line in out.stdout.splitlines():
                fields = dict(word.split("=", 1) for word in line.split() if "=" in word)
                self.states[_job_key(fields)] = fields.get("JobState", "")
            self.read_at = time.monotonic()
        return self.states.get(job_id, "")


class SlurmJob:
    """One submitted task; done when slurmctld says it ended (its result file alone is not enough: a cancelled
    task writes one while it is still COMPLETING)."""

    def __init__(self, task: Task, job: Any, states: SlurmStates) -> None:
        self.task, self.job, self.states = task, job, states
        self.submitted = time.monotonic()

    @property
    def job_id(self) -> str:
        return str(self.job.job_id)

    def done(self) -> bool:
        state = self.states.get(self.job_id)
        if state == "":  # slurmctld forgot it (MinJobAge) or lost it: done, failed unless it left a result
            return Path(self.job.paths.result_pickle).exists() or time.monotonic() - self.submitted > LOST_AFTER
        return state in FINISHED_STATES

    def outcome(self) -> Outcome:
        log = Path(self.job.paths.stderr)
        log_text = read_tail(Path(self.job.paths.stdout), 15) + "\n" + read_tail(log)
        state = self.states.get(self.job_id) or "UNKNOWN"
        if Path(self.job.paths.result_pickle).exists():
            try:
                self.job.result()
                return Outcome(True, 0, tail(log_text), "COMPLETED", str(log))
            except Exception as exc:  # the task's own failure, or a signal (cancelled, preempted, timed out)
                if state in FINISHED_STATES - {"COMPLETED", "FAILED"}:
                    return Outcome(False, None, tail(f"{log_text}\n{exc}"), state, str(log))
                return Outcome(False, 1, tail(f"{log_text}\n{exc}"), "FAILED", str(log))
        return Outcome(False, None, tail(log_text), state, str(log))

    def cancel(self) -> None:
        subprocess.run(["scancel", self.job_id], capture_output=True, check=False)


class SlurmExecutor:
    """Submits tasks with the sbatch options of params' `executor.slurm`."""

    kind = "slurm"

    def __init__(self, cfg: SlurmConfig, root: Path) -> None:
        import submitit

        self.cfg = cfg
        self.states = SlurmStates()
        folder = Path(cfg.folder)
        self.folder = folder if folder.is_absolute() else root / folder
        self.executor = submitit.AutoExecutor(folder=str(self.folder / "%j"), cluster="slurm")
        params: dict[str, Any] = {
            "timeout_min": cfg.time_min,
            "cpus_per_task": cfg.cpus_per_task,
            "mem_gb": cfg.mem_gb,
            "slurm_array_parallelism": cfg.array_parallelism,
            "name": "miad",
        }
        if cfg.gpus_per_task:
            params["slurm_gpus_per_task"] = cfg.gpus_per_task
        if cfg.partition:
            params["slurm_partition"] = cfg.partition
        if cfg.account:
            params["slurm_account"] = cfg.account
        self.executor.update_parameters(**params)

    def _args(self, task: Task) -> tuple[list[str], str, dict[str, str]]:
        return list(task.argv), str(task.cwd), dict(task.env)

    def submit(self, task: Task) -> SlurmJob:
        self.executor.update_parameters(name=task.name[:60])
        return SlurmJob(task, self.executor.submit(run_command, *self._args(task)), self.states)

    def submit_many(self, tasks: list[Task]) -> list[SlurmJob]:
        """One job array for all `tasks` (at most `array_parallelism` running at once)."""
        if len(tasks) <= 1:
            return [self.submit(t) for t in tasks]
        self.executor.update_parameters(name=tasks[0].name.split(" ")[0][:60])
        args = [self._args(t) for t in tasks]
        jobs = self.executor.map_array(run_command, *zip(*args, strict=True))
        return [SlurmJob(t, j, self.states) for t, j in zip(tasks, jobs, strict=True)]
