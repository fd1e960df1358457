"""`miad import`: an MVTec-layout class folder (MIAD release, MVTec AD) into our shards (argument parsing only)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from miad.cliargs import Subparsers, add_command, add_no_progress, add_renders, add_scenario, add_variant, params_of
from miad.errors import UserError


def import_folder(source: Path, scenario: str, renders: Path, variant: str, shard_size: int, progress: bool) -> None:
    """Import one class folder as the dataset `variant/scenario` under `renders`; say what came in."""
    from miad.importing.mvtec import import_mvtec

    report = import_mvtec(source, renders, variant, scenario, shard_size=shard_size, progress=progress)
    print(
        f"{variant}/{scenario}: imported {source} ({report.width}x{report.height} px): {json.dumps(report.counts)}",
        file=sys.stderr,
    )


def cmd_import(args: argparse.Namespace) -> int:
    from miad.importing.miad_release import scenario_for_class

    source = Path(args.source)
    scenario = args.scenario or scenario_for_class(source.name)
    if scenario is None:
        raise UserError(
            f"{source}: {source.name!r} is not one of MIAD's class names; say which scenario it fills with --scenario"
        )
    args.scenario = scenario  # the provenance target names it
    if args.check:
        from miad.importing.mvtec import scan

        print(f"{source}: importable as {scenario}: {json.dumps(scan(source).counts())}")
        return 0
    shard_size = params_of(args).active.render.shard_size
    import_folder(source, scenario, Path(args.renders), args.variant, shard_size, not args.no_progress)
    return 0


def import_provenance(args: argparse.Namespace) -> tuple[Path, bool] | None:
    """The imported dataset's sidecar (none for --check)."""
    return None if args.check else (Path(args.renders) / args.variant / args.scenario, False)


def register(sub: Subparsers) -> None:
    """Add `miad import` to miad's subcommands."""
    parser = add_command(
        sub, "import", cmd_import, "read an MVTec-layout class folder (MIAD release, MVTec AD) into our shards"
    )
    parser.add_argument("source", help="an MVTec-layout class folder: train/good, test/<type>, ground_truth")
    parser.add_argument("--layout", required=True, choices=["mvtec"], help="folder layout to read")
    add_scenario(parser, required=False, help="the scenario it fills (default: from a MIAD class folder's name)")
    add_variant(parser)
    add_renders(parser)
    parser.add_argument("--check", action="store_true", help="only check the layout and count images")
    add_no_progress(parser)
    parser.set_defaults(provenance=import_provenance)
