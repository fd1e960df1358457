"""`miad repro` (what `make reproduce` runs): pull what the DVC remote holds, restore data/, then launch the stale
stages, several at once (the executor from params and command line); a summary printed."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from miad.cliargs import Subparsers, add_command, add_executor
from miad.config import ConfigError, ExecutorConfig
from miad.errors import UserError
from miad.executors import load_executor_config, make_executor
from miad.executors.local import LocalExecutor
from miad.launcher.run import launch
from miad.launcher.runlock import RunLock


def say(line: str) -> None:
    """The launcher's progress lines, on stderr as they happen."""
    print(line, file=sys.stderr, flush=True)


def default_jobs(kind: str, workers: int) -> int:
    """Stages at once by default: one per core here (each stage's own threads are pinned by params, so the count
    changes no byte; measured on 2 cores: 2 at once is the fastest), params' `executor.workers` on Slurm."""
    return max(1, os.cpu_count() or 1) if kind == "local" else workers


def pull_and_restore(root: Path, remote: str | None) -> None:
    """Fetch (verified) what the DVC remote holds, if one is configured, then make data/ match data.dvc."""
    from miad.remote.sync import pull
    from miad.workspace.assets import restore_assets

    report = pull(root, remote, None)
    if report.remote is None:
        print("miad repro: no DVC remote configured: every stale stage is computed here", file=sys.stderr)
    else:
        print(
            f"miad repro: pulled from {report.remote.describe()}: {report.fetched_objects} new object(s); "
            f"{len(report.missing)} output(s) it lacks are computed here",
            file=sys.stderr,
        )
    if (root / "data.dvc").is_file():  # a project without an asset library (a toy DVC project) has nothing to restore
        restore_assets(root / "data", root / "data.dvc")


def repro(
    params: Path,
    targets: Sequence[str],
    *,
    kind: str | None,
    jobs: int | None,
    bench_json: str | None = None,
    dry: bool = False,
    pull_first: bool = False,
    remote: str | None = None,
    warm: bool = True,
) -> int:
    """Run the stale stages of the DVC project in the current directory; 0 when every stage succeeded. With
    `pull_first` (what `make reproduce` does), first fetch what the DVC remote holds and restore data/. `warm`:
    local train and evaluate stages run in warm workers (miad.launcher.warm), else each in a fresh process."""
    if jobs is not None and jobs < 1:
        raise ConfigError(f"--jobs {jobs}: expected a positive number of stages at once")
    cfg = load_executor_config(params, kind=kind)
    root = Path.cwd()
    with RunLock(root, say) as lock:  # a second run refuses before it pulls anything
        if pull_first and not dry:
            pull_and_restore(root, remote)
        return _launch(root, targets, cfg, jobs, warm, dry, bench_json, lock)


def _launch(
    root: Path,
    targets: Sequence[str],
    cfg: ExecutorConfig,
    jobs: int | None,
    warm: bool,
    dry: bool,
    bench_json: str | None,
    lock: RunLock,
) -> int:
    executor = make_executor(cfg, root)
    if cfg.kind == "local" and warm and not dry:
        from miad.launcher.warm import WarmExecutor

        executor = WarmExecutor(root)  # train and evaluate stages fork from a server with torch & co. imported
    coordinator = LocalExecutor()  # render stages coordinate here; their shard tasks use `executor`
    try:
        report = launch(
            root,
            targets,
            executor,
            jobs or default_jobs(cfg.kind, cfg.workers),
            coordinator=coordinator,
            poll_seconds=min(cfg.poll_seconds, 0.2) if cfg.kind == "local" else cfg.poll_seconds,
            say=say,
            dry=dry,
            lock=lock,
        )
    finally:
        close = getattr(executor, "close", None)
        if close is not None:
            close()  # the warm server and anything of it still running
    if dry:
        print(f"miad repro --dry-run: {len(report.ran)} stale now, {len(report.unchanged)} unchanged", file=sys.stderr)
        return 0
    busy = sum(report.seconds.values())
    print(
        f"miad repro: {len(report.ran)} ran, {len(report.restored)} restored from the run cache, "
        f"{len(report.unchanged)} unchanged; {report.wall_seconds:.1f}s wall, {busy:.1f}s of stage commands, "
        f"{report.record_seconds:.1f}s recording in DVC",
        file=sys.stderr,
    )
    if bench_json:
        from miad.atomic import write_json_atomic

        write_json_atomic(Path(bench_json), report.as_dict())
    return 0


def cmd_repro(args: argparse.Namespace) -> int:
    if args.profile:
        raise UserError("repro: --profile does not apply (DVC reads params.yaml); switch with `miad profile NAME`")
    where = {"kind": args.executor, "jobs": args.jobs, "pull_first": not args.no_pull, "remote": args.remote}
    where["warm"] = not args.cold
    return repro(Path(args.params), args.targets, **where, bench_json=args.stats_json, dry=args.dry_run)


def register(sub: Subparsers) -> None:
    """Add `miad repro` to miad's subcommands."""
    parser = add_command(
        sub,
        "repro",
        cmd_repro,
        "pull what the DVC remote holds, restore data/, then run the stale DVC stages several at once (local or "
        "Slurm), recorded as `dvc repro` would; what `make reproduce` runs",
    )
    parser.add_argument("targets", nargs="*", help="stages or dvc.yaml files (default: the whole pipeline)")
    add_executor(parser, what="stages", workers=False)
    parser.add_argument(
        "--jobs", "-j", type=int, help="stages at once (default: one per core; on Slurm, params' executor.workers)"
    )
    parser.add_argument("--remote", "-r", help="DVC remote to pull from (default: DVC's default remote)")
    parser.add_argument("--no-pull", action="store_true", help="compute everything stale; ignore the remote")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="run every stage in a fresh process (default: local train and evaluate stages fork from a warm server "
        "that has imported torch, timm and the methods; same bytes, about 5 s less per stage)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="list the plan, each stage stale or unchanged now; run nothing"
    )
    parser.add_argument("--stats-json", help="also write per-stage timings to this JSON file")
