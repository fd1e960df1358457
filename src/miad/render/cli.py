"""`miad render`: one dataset's shards, rendered here or fanned out to an executor (argument parsing only)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from miad.atomic import write_json_atomic
from miad.cliargs import Subparsers, add_command, add_dataset, add_executor, add_no_progress, add_stats_json, params_of


def cmd_render(args: argparse.Namespace) -> int:
    """Render (or resume) one dataset; print where the time went."""
    from miad.render.fanout import parse_shard, shard_runner_for, with_render_threads
    from miad.render.shard import render_dataset

    params = params_of(args)
    threads, shard = getattr(args, "threads", None), getattr(args, "shard", None)  # `miad dataset` has neither
    if threads is not None:
        params = with_render_threads(params, threads)
    only = parse_shard(shard) if shard else None
    runner = None
    if only is None:
        place = (Path(args.params), args.profile, args.variant, args.scenario, Path(args.renders))
        runner = shard_runner_for(
            params, *place, kind=args.executor, workers=args.workers, progress=not args.no_progress
        )
    report = render_dataset(
        params,
        args.variant,
        args.scenario,
        Path(args.renders),
        progress=not args.no_progress,
        only=only,
        shard_runner=runner,
    )
    share = report.cycles_seconds / report.wall_seconds if report.wall_seconds else 0.0
    print(
        f"{args.variant}/{args.scenario}: {report.rendered_images} images rendered in "
        f"{report.rendered_shards} shards, {report.skipped_shards} shards already done; "
        f"{report.wall_seconds:.1f}s wall, {100 * share:.0f}% inside Cycles",
        file=sys.stderr,
    )
    if args.stats_json:
        write_json_atomic(Path(args.stats_json), report.as_dict())
    args.timing_extra = report.as_dict()
    return 0


def dataset_provenance(args: argparse.Namespace) -> tuple[Path, bool] | None:
    """A whole dataset's sidecar, appended to (its shards may come from several processes); none for one shard."""
    if getattr(args, "shard", None):
        return None
    return Path(args.renders) / args.variant / args.scenario, True


def coordinates_shards(args: argparse.Namespace) -> bool:
    """Whether this command hands its shards to an executor (Slurm, several local workers) rather than rendering
    them itself: then it runs on the host, and each shard task (`miad render --shard`) in the image."""
    if getattr(args, "shard", None):
        return False
    from miad.render.fanout import executor_config, fans_out

    return fans_out(executor_config(Path(args.params), kind=args.executor, workers=args.workers))


def add_render_args(parser: argparse.ArgumentParser) -> None:
    """The flags `miad render` and `miad dataset` share: executor, progress, timings."""
    add_executor(parser, what="shard tasks")
    add_no_progress(parser)
    add_stats_json(parser, what="timings (wall, inside Cycles)")


def register(sub: Subparsers) -> None:
    """Add `miad render` to miad's subcommands."""
    parser = add_command(
        sub, "render", cmd_render, "render one scenario's train/test shards (resumes; finished shards are skipped)"
    )
    add_dataset(parser)
    add_render_args(parser)
    parser.add_argument("--shard", help="render only this shard, e.g. train/0 (one task of a fan-out)")
    parser.add_argument("--threads", type=int, help="Cycles threads (changes no bit; default: params)")
    parser.set_defaults(provenance=dataset_provenance, coordinates=coordinates_shards)
