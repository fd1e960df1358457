"""`miad report`, `miad compare`, `miad reference`: tables and figures, and how close yours are to a reference."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from miad.cliargs import Subparsers, add_command, add_no_progress, add_renders, params_of
from miad.errors import UserError


def cmd_report(args: argparse.Namespace) -> int:
    from miad.reporting.report import build_report

    stats = Path(args.stats) if args.stats else None
    if stats is not None and not stats.is_file():
        raise UserError(f"{stats}: dataset statistics missing; run `miad stats` first (or pass --stats '')")
    folders = (Path(args.runs), Path(args.size_runs), Path(args.maps), Path(args.renders), Path(args.out))
    build_report(params_of(args), *folders, stats)
    print(f"tables in {Path(args.out) / 'tables'}, figures in {Path(args.out) / 'figures'}", file=sys.stderr)
    return 0


def report_provenance(args: argparse.Namespace) -> tuple[Path, bool]:
    """The report's sidecar sits beside metrics.json."""
    return Path(args.out) / "metrics.json", False


def cmd_compare(args: argparse.Namespace) -> int:
    if args.show < 0:
        raise UserError(f"--show: expected a non-negative number of rows, got {args.show}")
    if args.renders or args.models:
        return compare_digests(args)
    if args.against:
        raise UserError("--against applies to --renders and --models (the reference's images or checkpoints)")
    from miad.numeric_env import provenance_summary
    from miad.reporting.compare import (
        committed_paths,
        compare_metrics,
        format_comparison,
        parse_tolerances,
        read_confidence,
        read_metrics,
        read_reference,
    )

    metrics_path = Path(args.metrics)
    ours = read_metrics(metrics_path)
    committed, _ = committed_paths(Path(args.params), args.profile, metrics_path)
    reference, described = read_reference(args.reference or "HEAD", committed)
    confidence, source = read_confidence(args.confidence, Path(args.params), args.profile)
    comparison = compare_metrics(
        ours,
        reference,
        parse_tolerances(args.tolerance),
        exact=args.exact,
        confidence=confidence,
        alpha=args.alpha,
        sources=(args.metrics, described),
    )
    print(format_comparison(comparison, described, confidence_source=source, show=args.show))
    made_by = provenance_summary(Path(args.runs)) if Path(args.runs).is_dir() else {}
    if made_by:
        print("\nyour runs were made by (provenance sidecars under " + args.runs + "):")
        for line, count in made_by.items():
            print(f"  {count:4d} x {line}")
    return 0 if comparison.reproduced else 1


def compare_digests(args: argparse.Namespace) -> int:
    """`miad compare --renders/--models`: images and checkpoints against the reference digests, bit for bit."""
    from miad.reporting.compare import committed_paths
    from miad.reporting.digests_report import compare_workspace

    if args.exact or args.tolerance:
        raise UserError("--exact and --tolerance judge metrics; --renders and --models compare digests, bit for bit")
    _, digests = committed_paths(Path(args.params), args.profile)
    report, identical = compare_workspace(
        Path(args.workspace),
        Path(args.digests) if args.digests else digests,
        args.reference,
        renders=args.renders,
        models=args.models,
        against=Path(args.against) if args.against else None,
        show=args.show,
        progress=not args.no_progress,
    )
    print(report)
    return 0 if identical else 1


def cmd_reference(args: argparse.Namespace) -> int:
    from miad.reporting.compare import committed_paths
    from miad.reporting.digests import record

    out = Path(args.out) if args.out else committed_paths(Path(args.params), args.profile)[1]
    counts = record(Path(args.workspace), out, progress=not args.no_progress)
    print(
        f"wrote {out}: {counts['images']} images ({counts['datasets']} datasets), {counts['tensors']} tensors "
        f"({counts['checkpoints']} checkpoints), made in {counts['environments']} environment(s); commit it to "
        "compare other machines' outputs with `miad compare --renders` / `--models`",
        file=sys.stderr,
    )
    return 0


def register(sub: Subparsers) -> None:
    """Add `miad report`, `miad compare` and `miad reference` to miad's subcommands."""
    report = add_command(
        sub, "report", cmd_report, "write Tables 3-7 (ours beside the paper's), metrics.json and Figures 2, 4, 5"
    )
    report.add_argument("--stats", default="results/dataset_stats.json", help="`miad stats` output to show")
    report.add_argument("--runs", default="results/runs", help="evaluation results (default: %(default)s)")
    report.add_argument("--size-runs", default="results/runs_size", help="Table 7 evaluation results")
    report.add_argument("--maps", default="results/maps", help="anomaly maps kept for Figures 4-5")
    add_renders(report)
    report.add_argument("--out", default="results", help="output root (default: %(default)s)")
    report.set_defaults(provenance=report_provenance)
    _compare_args(
        add_command(
            sub,
            "compare",
            cmd_compare,
            "your metrics.json against a reference (a file or git revision), cell by cell; with --renders or "
            "--models, your images or checkpoints against the reference digests, bit for bit",
        )
    )
    reference = add_command(
        sub,
        "reference",
        cmd_reference,
        "record per-image and per-tensor digests of renders/, models/ and models_size/ (results/reference/)",
    )
    reference.add_argument(
        "action",
        choices=["record"],
        help="record: write renders.tsv (per image: decoded image and mask digests), models.tsv (per tensor) and "
        "machine.json (the environments that made the outputs, from their provenance sidecars) into --out",
    )
    reference.add_argument(
        "--workspace", default=".", help="the clone whose renders/, models/, models_size/ to record (default: .)"
    )
    reference.add_argument(
        "--out",
        help="folder to write (default: results/reference; under the findings profile, results/findings/reference)",
    )
    add_no_progress(reference)


def _compare_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics", default="results/metrics.json", help="yours (default: %(default)s)")
    parser.add_argument(
        "--reference",
        help="metrics: a metrics file, or a git revision whose copy of --metrics to read (default: HEAD, the "
        "committed one; under the findings profile, of results/findings/metrics.json); --renders/--models: a git "
        "revision whose copy of the --digests files to read, or a folder "
        "holding renders.tsv/models.tsv (default: the working tree's --digests folder; HEAD compares with the "
        "committed digests even after `miad reference record` rewrote them)",
    )
    parser.add_argument(
        "--tolerance",
        action="append",
        metavar="[METRIC=]VALUE",
        help="absolute tolerance of the bitwise verdict, for every number or one metric (repeatable; default: 0, "
        "identical); also judges metric cells that have no interval on either side",
    )
    parser.add_argument(
        "--exact",
        action="store_true",
        help="decide by the bitwise verdict: every number, interval bounds included, identical (same bytes on "
        "every machine); default: the statistical verdict (cells judged against their intervals, the count of "
        "cells outside tested against the confidence level)",
    )
    parser.add_argument(
        "--confidence",
        type=float,
        help="confidence level of the intervals in both files (default: the active profile's "
        "evaluate.confidence in --params, else 0.95)",
    )
    parser.add_argument(
        "--alpha",
        type=float,
        default=0.05,
        help="significance level of the binomial test of the count of cells outside (default: %(default)s)",
    )
    parser.add_argument("--runs", default="results/runs", help="where to read your runs' provenance")
    parser.add_argument(
        "--renders",
        action="store_true",
        help="compare your renders/ with the reference digests (results/reference/renders.tsv): every image's "
        "decoded pixels and mask; per dataset identical / differ / missing / extra",
    )
    parser.add_argument(
        "--models",
        action="store_true",
        help="compare your models/ and models_size/ checkpoints with the reference digests "
        "(results/reference/models.tsv), tensor by tensor",
    )
    parser.add_argument(
        "--against",
        metavar="DIR",
        help="the reference's own outputs, to measure how far differing ones lie apart: a renders folder (or a "
        "clone holding renders/) for --renders: max |diff|, PSNR, pixels changed; a folder holding models/ and "
        "models_size/ for --models: max |diff| per checkpoint and tensor",
    )
    parser.add_argument(
        "--workspace", default=".", help="the clone whose renders/, models/, models_size/ to compare (default: .)"
    )
    parser.add_argument(
        "--digests",
        help="where the reference digest files live (default: results/reference; under the findings profile, "
        "results/findings/reference)",
    )
    parser.add_argument(
        "--show", type=int, default=40, metavar="N", help="list at most N rows per table (default: %(default)s)"
    )
    add_no_progress(parser)
    parser.epilog = (
        "Exit status: 0 when every cell is reproduced (metrics) or every image / tensor is identical to the "
        "reference's (--renders, --models), 1 when something differs or is missing, 2 when a file, folder or "
        "revision cannot be read. Renders are compared by the digest of their decoded pixels, so another PNG "
        "encoding of the same pixels is identical; with --against the differing ones are decoded on both sides."
    )
