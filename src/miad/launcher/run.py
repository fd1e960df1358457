"""Schedule the stale stages: at most N commands at once, each started when every stage it depends on is done.

Decisions follow `dvc repro` exactly: the same plan (dvc.repo.reproduce.plan_repro over the active graph), the same
staleness test when a stage's turn comes, the same run-cache restore, output removal and recording. The repository
lock is held throughout, so no other DVC process interleaves; the commands themselves never touch DVC.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from miad.errors import MiadError
from miad.executors import Executor, Job, Task
from miad.executors.base import Outcome
from miad.executors.config import EXECUTOR_ENV
from miad.launcher import record
from miad.launcher.runlock import RunLock

# Several torch processes sharing few cores: OpenMP threads that spin while idle steal each other's cores. A passive
# wait policy changes only scheduling, never an arithmetic result, so it is set when stages run side by side.
SHARED_CORES_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}
COORDINATORS = ("miad render", "miad dataset")  # stages that fan out themselves: they run here, their shards go out


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM while DVC records a stage (dvc.lock, the cache): they arrive right after."""
    held = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, held)


class LaunchError(MiadError, RuntimeError):
    """Some stages failed: the message names each one with the end of its command's output."""


@dataclass
class LaunchReport:
    """What a launch did, stage by stage, and where the time went."""

    ran: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)  # from DVC's run cache, nothing run
    unchanged: list[str] = field(default_factory=list)
    failed: dict[str, Outcome] = field(default_factory=dict)
    blocked: list[str] = field(default_factory=list)  # not run: a stage they depend on failed
    seconds: dict[str, float] = field(default_factory=dict)  # command wall time per stage
    record_seconds: float = 0.0  # hashing, caching and lock-file writes, all stages together
    plan_seconds: float = 0.0  # loading the DVC graph and planning
    wall_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        data = dict(vars(self))
        data["failed"] = {name: o.log_tail for name, o in self.failed.items()}
        return data


def launch(
    root: Path,
    targets: Sequence[str],
    executor: Executor,
    jobs: int,
    *,
    coordinator: Executor | None = None,
    poll_seconds: float = 0.2,
    say: Callable[[str], None] = print,
    dry: bool = False,
    lock: RunLock | None = None,
) -> LaunchReport:
    """Reproduce `targets` (default: the whole dvc.yaml) in `root` with up to `jobs` stage commands at once.
    `dry`: only list the plan, each stage marked stale or unchanged as the workspace stands (nothing runs).
    `lock`: the workspace's RunLock when the caller already holds it (it pulled first), else taken here."""
    from dvc.repo import Repo, locked
    from dvc.repo.scm_context import scm_context

    @locked
    @scm_context
    def _launch(repo: Repo, lock: RunLock) -> LaunchReport:
        launcher = _Launcher(repo, executor, coordinator or executor, jobs, poll_seconds, say, lock)
        return launcher.run(targets, dry=dry)

    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        held = lock or stack.enter_context(RunLock(root, say))
        repo = stack.enter_context(Repo(str(root)))
        report = _launch(repo, held)
    report.wall_seconds = time.perf_counter() - start
    if report.failed:
        parts = [f"stage '{name}' failed:\n{outcome.log_tail}" for name, outcome in report.failed.items()]
        if report.blocked:
            parts.append(f"not run because a stage they depend on failed: {', '.join(report.blocked)}")
        raise LaunchError("\n\n".join(parts))
    return report


class _Launcher:
    def __init__(
        self,
        repo: Any,
        executor: Executor,
        coordinator: Executor,
        jobs: int,
        poll: float,
        say: Callable[[str], None],
        lock: RunLock,
    ) -> None:
        self.repo, self.executor, self.coordinator = repo, executor, coordinator
        self.jobs, self.poll, self.say, self.lock = jobs, poll, say, lock
        self.report = LaunchReport()
        self.running: dict[Any, tuple[Job, float]] = {}  # stage -> (job, started)

    def run(self, targets: Sequence[str], *, dry: bool = False) -> LaunchReport:
        from dvc.repo.reproduce import collect_stages, get_active_graph, plan_repro

        start = time.perf_counter()
        graph = get_active_graph(self.repo.index.graph)
        steps = plan_repro(graph, collect_stages(self.repo, list(targets) or ["dvc.yaml"]))
        upstream = {s: [u for u in graph.successors(s) if u in steps] for s in steps}  # DVC: edges point upstream
        lock_before = record.lock_order(self.repo)
        self.report.plan_seconds = time.perf_counter() - start
        self.say(f"miad repro: {len(steps)} stages in the plan, up to {self.jobs} at once ({self.executor.kind})")
        if dry:
            for stage in steps:
                stale = record.is_stale(stage, upstream[stage])
                (self.report.ran if stale else self.report.unchanged).append(stage.addressing)
                self.say(f"  {'stale    ' if stale else 'unchanged'} {stage.addressing}")
            return self.report

        try:
            self._run_steps(steps, upstream)
        except BaseException:  # Ctrl-C, SIGTERM, or a bug: nothing we started may keep running or be recorded
            self._cancel_running()
            raise
        record.reorder_lock(self.repo, lock_before, [s.addressing for s in self.repo.index.stages])
        return self.report

    def _cancel_running(self) -> None:
        names = [stage.addressing for stage in self.running]
        if names:
            self.say(f"miad repro: interrupted; cancelling {len(names)} running stage(s): {', '.join(names)}")
        for stage, (job, _) in list(self.running.items()):
            job.cancel()
            self.lock.untrack(stage.addressing)
        self.running.clear()
        self.say(
            "miad repro: stopped. Finished stages are recorded in dvc.lock; cancelled ones are not (their outputs "
            "are redone). Run it again to resume."
        )

    def _run_steps(self, steps: list[Any], upstream: dict[Any, list[Any]]) -> None:
        pending, done, running = list(steps), set(), self.running
        while pending or running:
            for stage in [s for s in pending if all(u in done for u in upstream[s])]:
                if len(running) >= self.jobs:
                    break
                pending.remove(stage)
                job = self._start(stage, upstream[stage])
                if job is None:
                    done.add(stage)
                elif job is not False:
                    running[stage] = (job, time.perf_counter())
                    self.lock.track(stage.addressing, job)
            if pending and not running and not any(all(u in done for u in upstream[s]) for s in pending):
                blocked = [s.addressing for s in pending]  # everything left waits on a failed stage
                self.report.blocked.extend(blocked)
                pending.clear()
            finished = [s for s, (job, _) in running.items() if job.done()]
            if not finished:
                time.sleep(self.poll)
            for stage in finished:
                job, started = running[stage]
                self.report.seconds[stage.addressing] = round(time.perf_counter() - started, 3)
                ok = self._finish(stage, job.outcome())
                del running[stage]
                self.lock.untrack(stage.addressing)
                if ok:
                    done.add(stage)

    def _start(self, stage: Any, upstream: list[Any]) -> Job | bool | None:
        """Decide and prepare one stage: its running job; None when nothing is left to run (unchanged, restored
        from the run cache, a data source recorded); False when DVC refused it (recorded as failed)."""
        start = time.perf_counter()
        name = stage.addressing
        try:
            if not record.is_stale(stage, upstream):
                self.report.unchanged.append(name)
                return None
            if not stage.cmd:  # a data source (data.dvc): DVC's own reproduce checks and records it, nothing runs
                if stage.reproduce(upstream=upstream) is not None:
                    stage.dump(update_pipeline=False)
                self.report.ran.append(name)
                return None
            if record.prepare(stage):
                with signals_deferred():
                    record.record(stage)
                self.report.restored.append(name)
                self.say(f"  restored {name} from the run cache")
                return None
        except Exception as exc:  # DVC refused (a data source's data missing, an output it cannot remove, ...)
            self.report.failed[name] = Outcome(False, None, f"{type(exc).__name__}: {exc}", "DVC")
            self.say(f"  FAILED {name}: {exc}")
            return False
        finally:
            self.report.record_seconds += time.perf_counter() - start
        argv, env, cwd = record.command(stage)
        if self.jobs > 1 and self.executor.kind == "local":
            env.update({k: v for k, v in SHARED_CORES_ENV.items() if k not in os.environ})
        coordinating = str(stage.cmd).lstrip().startswith(COORDINATORS)
        executor = self.coordinator if coordinating else self.executor
        if coordinating:
            env[EXECUTOR_ENV] = self.executor.kind
        self.say(f"  start {name}")
        return executor.submit(Task(name, argv, Path(cwd), env))

    def _finish(self, stage: Any, outcome: Outcome) -> bool:
        name = stage.addressing
        if outcome.ok:
            start = time.perf_counter()
            try:
                with signals_deferred():
                    record.record(stage)
            except Exception as exc:  # a stage whose outputs DVC refuses (missing, ...) is a failed stage
                outcome = Outcome(False, outcome.returncode, f"{outcome.log_tail}\nrecording failed: {exc}")
            finally:
                self.report.record_seconds += time.perf_counter() - start
        if outcome.ok:
            self.report.ran.append(name)
            self.say(f"  done  {name} ({self.report.seconds[name]:.1f}s)")
            return True
        self.report.failed[name] = outcome
        self.say(f"  FAILED {name} (log: {outcome.log_path})")
        return False
