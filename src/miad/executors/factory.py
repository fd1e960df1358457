"""Build the executor a config names."""

from __future__ import annotations

from pathlib import Path

from miad.config import ExecutorConfig
from miad.executors.base import Executor


def make_executor(cfg: ExecutorConfig, root: Path) -> Executor:
    """`root`: the project folder (Slurm logs go under it, so every node that mounts it can write them)."""
    if cfg.kind == "slurm":
        from miad.executors.slurm import SlurmExecutor

        return SlurmExecutor(cfg.slurm, root)
    from miad.executors.local import LocalExecutor

    return LocalExecutor()
