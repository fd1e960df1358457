"""The `executor:` section of params.yaml, validated like every other section, plus command-line overrides."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from miad.config import ConfigError, _choices, _range, build

KINDS = ("local", "slurm")
EXECUTOR_ENV = "MIAD_EXECUTOR"  # `local` or `slurm`: overrides params' executor.kind (`miad repro` sets it)
WORKERS_ENV = "MIAD_WORKERS"  # overrides params' executor.workers


@dataclass(frozen=True)
class SlurmConfig:
    """What one Slurm job asks for (sbatch options), and how many array tasks may run at once."""

    partition: str = ""  # sbatch --partition; "" = the cluster's default partition
    time_min: int = field(default=60, metadata=_range(1))  # wall-time limit of one task, minutes
    cpus_per_task: int = field(default=2, metadata=_range(1, 1024))  # CPUs of one task
    mem_gb: float = field(default=8.0, metadata=_range(0, lo_open=True))  # memory of one task, GB
    gpus_per_task: int = field(default=0, metadata=_range(0, 64))  # GPUs of one task (train/evaluate on GPU)
    array_parallelism: int = field(default=64, metadata=_range(1))  # array tasks running at once
    account: str = ""  # sbatch --account; "" = none
    folder: str = ".slurm/logs"  # where submitit writes job scripts and each task's stdout/stderr


@dataclass(frozen=True)
class ExecutorConfig:
    """Where fanned-out `miad` commands run. Never hashed by DVC: it changes where, not what."""

    kind: str = field(default="local", metadata=_choices(*KINDS))  # local processes or Slurm jobs
    workers: int = field(default=1, metadata=_range(1, 1024))  # local: tasks at once (render threads split)
    retries: int = field(default=2, metadata=_range(0, 20))  # a failed or preempted task is rerun this often
    poll_seconds: float = field(default=1.0, metadata=_range(0, lo_open=True))  # how often job states are read
    slurm: SlurmConfig = SlurmConfig()


def parse_executor(data: Any, where: str = "executor") -> ExecutorConfig:
    """The typed executor config of a parsed `executor:` mapping (None or absent: the defaults)."""
    if data is None:
        return ExecutorConfig()
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    return build(ExecutorConfig, data, where)


def load_executor_config(
    params: str | Path = "params.yaml", *, kind: str | None = None, workers: int | None = None
) -> ExecutorConfig:
    """params.yaml's `executor:` section with command-line overrides (`kind`, `workers`) applied and checked."""
    path = Path(params)
    data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
    try:
        cfg = parse_executor((data or {}).get("executor") if isinstance(data, dict) else None)
        overrides = {k: v for k, v in {"kind": kind, "workers": workers}.items() if v is not None}
        build(ExecutorConfig, overrides, "command line")  # checks the overriding values alone
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return replace(cfg, **overrides)
