"""`miad rehearse`: argument parsing only (miad.cli registers it)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from miad.catalog import SCENARIO_NAMES, VARIANT_NAMES
from miad.cliargs import Subparsers, add_command, add_only
from miad.method_catalog import METHOD_NAMES
from miad.project import project_root
from miad.rehearsal.params import Shrink
from miad.rehearsal.run import rehearse


def cmd_rehearse(args: argparse.Namespace) -> int:
    shrink = Shrink(
        n_train=args.n_train,
        n_test_good=args.n_test,
        n_test_defective=args.n_test,
        scenarios=tuple(args.scenario or ()),
        methods=tuple(args.method or ()),
        variants=tuple(args.variant or ()),
        samples=args.samples,
        threads=args.threads,
    )
    outcome = rehearse(project_root(Path.cwd()), Path(args.dir) if args.dir else None, shrink)
    print(f"rehearsal folder: {outcome.folder} ({outcome.seconds / 60:.1f} min; log: {outcome.folder}/rehearsal.log)")
    print(f"results: {outcome.folder}/results (tables: {outcome.folder}/results/tables)")
    if outcome.failed_step:
        print(f"FAILED at {outcome.failed_step} (exit {outcome.returncode})", file=sys.stderr)
    for item in outcome.missing:
        print(f"missing: {item}", file=sys.stderr)
    if outcome.ok:
        print("every expected table and cell was written")
    return 0 if outcome.ok else 1


def register(sub: Subparsers) -> None:
    summary = "run the paper profile end to end on CPU in a scratch copy, only image counts shrunk (random backbones)"
    parser = add_command(sub, "rehearse", cmd_rehearse, summary, params=False)
    parser.add_argument("--dir", help="scratch folder (new or empty, outside the project; default: a temp folder)")
    add_only(parser, "scenario", SCENARIO_NAMES)
    add_only(parser, "method", METHOD_NAMES)
    parser.add_argument("--n-train", type=int, default=4, help="training images per scenario (default: %(default)s)")
    parser.add_argument("--n-test", type=int, default=2, help="test images per class (default: %(default)s)")
    add_only(parser, "variant", VARIANT_NAMES)
    parser.add_argument(
        "--samples", type=int, default=0, help="Cycles samples per pixel (default: 0, the paper's; lower = faster)"
    )
    parser.add_argument("--threads", type=int, default=0, help="numeric threads (default: 0, the core count)")
