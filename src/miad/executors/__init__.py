"""Executors: where `miad ...` commands run when one stage fans out (render shards) or many stages run at once.

`local` runs them as processes on this machine, `slurm` as Slurm jobs through submitit. The choice lives in
params.yaml's top-level `executor:` section, which no DVC stage lists, so it never enters a hash or changes a byte.
"""

from miad.executors.base import Executor, Job, Outcome, Task
from miad.executors.config import load_executor_config
from miad.executors.factory import make_executor

__all__ = ["Executor", "Job", "Outcome", "Task", "load_executor_config", "make_executor"]
