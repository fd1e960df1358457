"""params.yaml's `executor:` section (parsed by miad.config) with command-line and environment overrides."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from miad.config import ConfigError, ExecutorConfig, build, load_params

EXECUTOR_ENV = "MIAD_EXECUTOR"  # `local` or `slurm`: overrides params' executor.kind (`miad repro` sets it)
WORKERS_ENV = "MIAD_WORKERS"  # overrides params' executor.workers


def load_executor_config(
    params: str | Path = "params.yaml", *, kind: str | None = None, workers: int | None = None
) -> ExecutorConfig:
    """The validated params' `executor:` section with command-line overrides (`kind`, `workers`) applied and checked;
    the defaults where there is no params file (a DVC project of other stages)."""
    path = Path(params)
    cfg = load_params(path).executor if path.is_file() else ExecutorConfig()
    overrides = {k: v for k, v in {"kind": kind, "workers": workers}.items() if v is not None}
    try:
        build(ExecutorConfig, overrides, "command line")  # checks the overriding values alone
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return replace(cfg, **overrides)
