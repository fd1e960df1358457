"""The Slurm executor: each task an sbatch job (a job array when submitted together), through submitit.

submitit writes the job scripts and runs `run_command` on the compute node, so a task is still one command line
(a `miad ...` argv or a stage's shell line) and its stdout/stderr land in the task's Slurm log. Job states come
from `scontrol show job` (clusters without an accounting database have no `sacct`), results from submitit's files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from miad.executors.base import Outcome, Task, read_tail, tail
from miad.executors.config import SlurmConfig

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


def run_command(argv: list[str], cwd: str, env: dict[str, str]) -> int:
    """Run on the compute node: the task's command, its output streamed into this job's Slurm log."""
    sys.stdout.flush()
    proc = subprocess.run(argv, cwd=cwd, env={**os.environ, **env}, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"command exited with status {proc.returncode}: {' '.join(argv)}")
    return 0


def slurm_state(job_id: str) -> str:
    """The job's state as slurmctld reports it ("" when slurmctld no longer knows the job)."""
    out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, check=False)
    for word in out.stdout.split():
        if word.startswith("JobState="):
            return word.split("=", 1)[1]
    return ""


class SlurmJob:
    """One submitted task; `done` once its result file exists or slurmctld says it ended."""

    def __init__(self, task: Task, job: Any) -> None:
        self.task = task
        self.job = job
        self._state = ""

    @property
    def job_id(self) -> str:
        return str(self.job.job_id)

    def done(self) -> bool:
        if Path(self.job.paths.result_pickle).exists():
            return True
        self._state = slurm_state(self.job_id)
        return self._state in FINISHED_STATES or self._state == ""

    def outcome(self) -> Outcome:
        log = Path(self.job.paths.stderr)
        log_text = read_tail(Path(self.job.paths.stdout), 15) + "\n" + read_tail(log)
        if Path(self.job.paths.result_pickle).exists():
            try:
                self.job.result()
                return Outcome(True, 0, tail(log_text), "COMPLETED", str(log))
            except Exception as exc:
                return Outcome(False, 1, tail(f"{log_text}\n{exc}"), "FAILED", str(log))
        state = self._state or slurm_state(self.job_id) or "UNKNOWN"
        return Outcome(False, None, tail(log_text), state, str(log))

    def cancel(self) -> None:
        subprocess.run(["scancel", self.job_id], capture_output=True, check=False)


class SlurmExecutor:
    """Submits tasks with the sbatch options of params' `executor.slurm`."""

    kind = "slurm"

    def __init__(self, cfg: SlurmConfig, root: Path) -> None:
        import submitit

        self.cfg = cfg
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
        return SlurmJob(task, self.executor.submit(run_command, *self._args(task)))

    def submit_many(self, tasks: list[Task]) -> list[SlurmJob]:
        """One job array for all `tasks` (at most `array_parallelism` running at once)."""
        if len(tasks) <= 1:
            return [self.submit(t) for t in tasks]
        self.executor.update_parameters(name=tasks[0].name.split(" ")[0][:60])
        args = [self._args(t) for t in tasks]
        jobs = self.executor.map_array(run_command, *zip(*args, strict=True))
        return [SlurmJob(t, j) for t, j in zip(tasks, jobs, strict=True)]
