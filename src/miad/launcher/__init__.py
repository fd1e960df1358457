"""`miad repro`: the pipeline's stale stages run concurrently in dependency order, recorded as `dvc repro` would.

DVC's own graph, change checks, run cache and lock-file writer decide and record everything; only the running of
stage commands is handed to an executor (local processes or Slurm jobs), several at once.
"""

from miad.launcher.run import LaunchError, LaunchReport, launch

__all__ = ["LaunchError", "LaunchReport", "launch"]
