"""Render a dataset's unfinished shards as separate tasks on an executor (local processes or a Slurm array).

Each task is the command `miad render ... --shard <split>/<n>`, so a container runtime can run it in the render
image, and a task counts as done only when its shard is finished (spec hash and every sha256). Cycles' thread count
changes no bit (render/bproc.py), so local workers split the cores between them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from miad.config import ConfigError, ExecutorConfig, Params
from miad.data.layout import SPLITS
from miad.executors import Task, load_executor_config, make_executor
from miad.executors.config import EXECUTOR_ENV, WORKERS_ENV
from miad.executors.wait import run_tasks
from miad.render.shard import ShardTask, is_finished


@dataclass(frozen=True)
class ShardFanout:
    """Everything a shard task's command line needs besides the shard itself."""

    executor: ExecutorConfig
    params_file: Path
    profile: str | None
    variant: str
    scenario: str
    renders: Path
    render_threads: int  # params' render.threads (0 = all cores)
    progress: bool = True

    def threads_per_task(self) -> int:
        """Cycles threads of one task: its Slurm CPUs, or this machine's share per local worker."""
        if self.executor.kind == "slurm":
            return self.executor.slurm.cpus_per_task
        total = self.render_threads or os.cpu_count() or 1
        return max(1, total // self.executor.workers)

    def command(self, task: ShardTask) -> tuple[str, ...]:
        profile = ("--profile", self.profile) if self.profile else ()
        return (
            "miad",
            "render",
            "--params",
            str(self.params_file),
            *profile,
            "--scenario",
            self.scenario,
            "--variant",
            self.variant,
            "--renders",
            str(self.renders),
            "--shard",
            f"{task.split}/{task.shard_index}",
            "--threads",
            str(self.threads_per_task()),
            "--no-progress",
        )

    def __call__(self, todo: list[ShardTask]) -> None:
        """Run one task per unfinished shard and wait, with a progress bar of shards done."""
        cwd = Path.cwd()
        tasks = {
            Task(f"{self.variant}/{self.scenario} shard {t.split}/{t.shard_index}", self.command(t), cwd): t
            for t in todo
        }
        limit = self.executor.workers if self.executor.kind == "local" else len(tasks)
        run_tasks(
            make_executor(self.executor, cwd),
            list(tasks),
            retries=self.executor.retries,
            limit=limit,
            finished=lambda task: is_finished(self.renders, self.variant, self.scenario, tasks[task]),
            poll_seconds=self.executor.poll_seconds,
            desc=f"render {self.variant}/{self.scenario} ({self.executor.kind})",
            unit="shard",
            progress=self.progress,
        )


def shard_runner_for(
    params: Params,
    params_file: Path,
    profile: str | None,
    variant: str,
    scenario: str,
    renders: Path,
    *,
    kind: str | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> ShardFanout | None:
    """The fan-out the executor config asks for (command line, then environment, then params), or None for
    today's in-process loop (local, one worker)."""
    cfg = executor_config(params_file, kind=kind, workers=workers)
    if not fans_out(cfg):
        return None
    return ShardFanout(cfg, params_file, profile, variant, scenario, renders, params.active.render.threads, progress)


def executor_config(params_file: Path, *, kind: str | None, workers: int | None) -> ExecutorConfig:
    """The executor a render command uses: its command-line options, then the environment, then params."""
    env_workers = os.environ.get(WORKERS_ENV)
    if workers is None and env_workers:
        if not env_workers.isdigit():
            raise ConfigError(f"{WORKERS_ENV}={env_workers!r}: expected a positive integer")
        workers = int(env_workers)
    return load_executor_config(params_file, kind=kind or os.environ.get(EXECUTOR_ENV) or None, workers=workers)


def fans_out(cfg: ExecutorConfig) -> bool:
    """Whether shards go out as tasks (Slurm, or several local workers) instead of today's in-process loop."""
    return not (cfg.kind == "local" and cfg.workers == 1)


def parse_shard(text: str) -> tuple[str, int]:
    """`train/3` -> ("train", 3)."""
    split, _, index = text.partition("/")
    if split not in SPLITS or not index.isdigit():
        raise ConfigError(f"--shard {text!r}: expected <split>/<index> with split in {list(SPLITS)}, e.g. train/0")
    return split, int(index)


def with_render_threads(params: Params, threads: int) -> Params:
    """These params with Cycles' thread count replaced (it changes no bit and no spec hash)."""
    if threads < 0:
        raise ConfigError(f"--threads {threads}: expected 0 (all cores) or a positive count")
    profile = params.active
    changed = replace(profile, render=replace(profile.render, threads=threads))
    return replace(params, profiles={**params.profiles, params.profile: changed})
