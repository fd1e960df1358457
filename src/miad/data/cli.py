"""`miad verify`, `miad export`, `miad stats`: the datasets' integrity, other layouts, statistics (parsing only)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from miad.atomic import write_json_atomic
from miad.catalog import VARIANT_NAMES
from miad.cliargs import Subparsers, add_command, add_only, add_renders, add_scenario, add_variant, params_of
from miad.errors import UserError


def cmd_verify(args: argparse.Namespace) -> int:
    from miad.data.manifest import split_folders, verify_split

    targets = [Path(p) for p in args.paths] or split_folders(Path(args.renders))
    if not targets:
        raise UserError(f"no rendered splits found under {args.renders} (no */*/*/manifest.json)")
    problems = []
    for directory in targets:
        found = verify_split(directory)
        problems.extend(found)
        print(f"{'ok  ' if not found else 'FAIL'} {directory}", file=sys.stderr)
    for line in problems:
        print(line)
    if problems:
        print(
            f"{len(problems)} problem(s): re-render with `dvc repro` (broken shards are rendered again)",
            file=sys.stderr,
        )
    return 1 if problems else 0


def cmd_export(args: argparse.Namespace) -> int:
    from miad.data.export import export_mvtec

    scenarios = args.scenario or list(params_of(args).scenarios)
    count = export_mvtec(Path(args.renders), args.variant, scenarios, Path(args.directory), force=args.force)
    print(f"wrote {count} images in the MVTec AD layout to {args.directory}", file=sys.stderr)
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from miad.data.stats import collect_stats, format_stats_table, leaking_datasets, rendered_datasets

    renders = Path(args.renders)
    if args.all:
        datasets = rendered_datasets(renders) if renders.is_dir() else []
    else:
        params = params_of(args)
        datasets = [("main", s) for s in params.scenarios]
        datasets += [(v, s) for v in params.ablation.variants for s in params.ablation.scenarios]
    if args.variant:
        datasets = [d for d in datasets if d[0] in args.variant]
    if not datasets:
        raise UserError(f"no rendered datasets (both splits with manifests) under {renders}")
    stats = collect_stats(renders, datasets)
    print(format_stats_table(stats))
    leaking = leaking_datasets(stats)
    if leaking:
        raise UserError(f"train and test splits share angle bins, backgrounds or textures in: {leaking}")
    write_json_atomic(Path(args.out), stats)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def register(sub: Subparsers) -> None:
    """Add `miad verify`, `miad export` and `miad stats` to miad's subcommands."""
    verify = add_command(
        sub, "verify", cmd_verify, "check every shard and image against its sha256; name what is corrupt or missing"
    )
    verify.add_argument("paths", nargs="*", help="split folders to check (default: all under --renders)")
    add_renders(verify)

    export = add_command(sub, "export", cmd_export, "write rendered data in another folder layout (MVTec AD)")
    export.add_argument("directory", help="output folder (must not exist unless --force)")
    export.add_argument("--layout", required=True, choices=["mvtec"], help="folder layout to write")
    add_scenario(
        export, required=False, repeatable=True, help="scenario to export (repeatable; default: all in params)"
    )
    add_variant(export)
    add_renders(export)
    export.add_argument("--force", action="store_true", help="replace an existing output folder")

    stats = add_command(
        sub, "stats", cmd_stats, "dataset statistics vs the paper (Table 2) and the train/test leak check, as JSON"
    )
    add_renders(stats)
    stats.add_argument("--out", default="results/dataset_stats.json", help="JSON to write (default: %(default)s)")
    add_only(stats, "variant", VARIANT_NAMES, default="every variant params.yaml lists")
    stats.add_argument(
        "--all", action="store_true", help="every dataset found under --renders (default: those params.yaml lists)"
    )
