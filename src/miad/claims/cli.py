"""`miad claims`: decide the paper's findings from a metrics.json and its run files (parsing only)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from miad.cliargs import Subparsers, add_command
from miad.errors import UserError


def cmd_claims(args: argparse.Namespace) -> int:
    from miad.claims.decide import decide
    from miad.claims.evidence import load_evidence
    from miad.claims.output import claims_table, write_claims
    from miad.claims.rules import summary_line
    from miad.config import PROFILES, load_params

    if args.confidence is not None and not 0.0 < args.confidence < 1.0:
        raise UserError(f"--confidence must lie in (0, 1), got {args.confidence}")
    if args.train_images is not None and args.train_images < 1:
        raise UserError(f"--train-images must be positive, got {args.train_images}")
    evidence = load_evidence(Path(args.metrics), Path(args.runs), Path(args.size_runs))
    if args.train_images is not None:
        evidence.train_images = args.train_images
    elif Path(args.params).is_file():  # the full training set of the profile the runs record
        profile = args.profile or (evidence.profile if evidence.profile in PROFILES else None)
        evidence.train_images = load_params(args.params, profile=profile).active.render.n_train
    confidence = evidence.confidence if args.confidence is None else args.confidence
    verdicts = decide(evidence, confidence)
    md, table = write_claims(verdicts, Path(args.out), profile=evidence.profile, confidence=confidence)
    print(claims_table(verdicts))
    print(summary_line(verdicts, evidence.profile))
    print(f"wrote {md} and {table}", file=sys.stderr)
    return 0  # a contradicted finding is a result, not an error


def register(sub: Subparsers) -> None:
    """Add `miad claims` to miad's subcommands."""
    claims = add_command(
        sub,
        "claims",
        cmd_claims,
        "decide each finding of the paper (4.2-4.4) from metrics.json: holds, contradicted or undecided",
    )
    claims.add_argument(
        "--metrics", default="results/metrics.json", help="metrics of `miad report` (default: %(default)s)"
    )
    claims.add_argument("--runs", default="results/runs", help="evaluation runs with replicates (default: %(default)s)")
    claims.add_argument(
        "--size-runs", default="results/runs_size", help="Table 7's evaluation runs (default: %(default)s)"
    )
    claims.add_argument(
        "--out", default="results/tables", help="folder for claims.md and claims.csv (default: %(default)s)"
    )
    claims.add_argument(
        "--confidence",
        type=float,
        help="confidence of the verdicts (default: the runs' own, params' evaluate.confidence)",
    )
    claims.add_argument(
        "--train-images",
        type=int,
        help="training images of the full set, for PatchCore's 2000-image claim (default: the runs' profile's)",
    )
