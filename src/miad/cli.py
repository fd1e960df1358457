"""`miad <command>`: every stage of the MIAD bundle from the command line (dvc.yaml calls these)."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from miad.atomic import write_json_atomic
from miad.catalog import SCENARIO_NAMES, VARIANT_NAMES
from miad.config import PROFILES, ConfigError, Params, load_params
from miad.method_catalog import TRAINABLE
from miad.rehearsal.cli import register as register_rehearsal
from miad.remote.cli import register as register_remote
from miad.runtime import run_in_container
from miad.weights.cli import register as register_weights

DESCRIPTION = """\
MIAD reproducibility bundle: render a MIAD-like dataset with BlenderProc, train the benchmarked
anomaly-detection methods, and rebuild the paper's tables. `dvc repro` (or `make reproduce`) runs
the whole pipeline; these commands are its stages, usable one by one.
"""

EPILOG = """\
examples:
  miad render --scenario electrical_insulator      render (or resume) one scenario's shards
  miad verify                                      check every shard's sha256 under renders/
  miad stats                                       defect pixel ratios vs the paper, split-leak check
  miad export --layout mvtec /tmp/miad_mvtec       write the MVTec AD folder layout
  miad import --layout mvtec mvtec/bottle --scenario witness_mark
                                                   read an MVTec-layout class folder into renders/
  miad profile paper                               switch params.yaml to the paper profile
  miad compare                                     your results/metrics.json against the committed one
  miad reference record                            per-image and per-tensor digests into results/reference/
  miad compare --renders --models                  your renders and checkpoints against those digests
  miad rehearse                                    the paper profile on CPU in a scratch copy, counts shrunk
"""


class UserError(Exception):
    """An error caused by input (params, paths, data); printed without a traceback."""


def _params(args: argparse.Namespace) -> Params:
    return load_params(args.params, profile=args.profile)


# --- commands -----------------------------------------------------------------------------------------------


def cmd_render(args: argparse.Namespace) -> int:
    from miad.render.fanout import parse_shard, shard_runner_for, with_render_threads
    from miad.render.shard import render_dataset

    params = _params(args)
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


def cmd_repro(args: argparse.Namespace) -> int:
    from miad.launcher.cli import repro

    if args.profile:
        raise UserError("repro: --profile does not apply (DVC reads params.yaml); switch with `miad profile NAME`")
    return repro(
        Path(args.params),
        args.targets,
        kind=args.executor,
        jobs=args.jobs,
        bench_json=args.stats_json,
        dry=args.dry_run,
    )


def cmd_plan(args: argparse.Namespace) -> int:
    from miad.executors.config import load_executor_config
    from miad.plan import estimate_pipeline
    from miad.plan.table import over_memory, render_table, totals

    params = _params(args)
    task_memory_gb = load_executor_config(args.params).slurm.mem_gb
    rows = estimate_pipeline(Path.cwd(), params)
    if args.json:
        heavy = [r.stage for r in over_memory(rows, task_memory_gb)]
        bill = {"profile": params.profile, "total": totals(rows), "stages": [r.as_dict() for r in rows]}
        print(json.dumps({**bill, "task_memory_gb": task_memory_gb, "over_task_memory": heavy}))
    else:
        print(render_table(rows, params.profile, task_memory_gb))
    return 0


def cmd_dataset(args: argparse.Namespace) -> int:
    params = _params(args)
    args.variant = "main"
    if params.dataset.source == "rendered":
        return cmd_render(args)
    source = Path(params.dataset.imports) / args.scenario
    return _import(source, args.scenario, Path(args.renders), "main", params.active.render.shard_size, args.no_progress)


def cmd_import(args: argparse.Namespace) -> int:
    from miad.importing.miad_release import scenario_for_class

    source = Path(args.source)
    scenario = args.scenario or scenario_for_class(source.name)
    if scenario is None:
        raise UserError(
            f"{source}: {source.name!r} is not one of MIAD's class names; say which scenario it fills with --scenario"
        )
    args.scenario = scenario
    if args.check:
        from miad.importing.mvtec import scan

        counts = scan(source).counts()
        print(f"{source}: importable as {scenario}: {json.dumps(counts)}")
        return 0
    shard_size = _params(args).active.render.shard_size
    return _import(source, scenario, Path(args.renders), args.variant, shard_size, args.no_progress)


def _import(source: Path, scenario: str, renders: Path, variant: str, shard_size: int, no_progress: bool) -> int:
    from miad.importing.mvtec import import_mvtec

    report = import_mvtec(source, renders, variant, scenario, shard_size=shard_size, progress=not no_progress)
    print(
        f"{variant}/{scenario}: imported {source} ({report.width}x{report.height} px): {json.dumps(report.counts)}",
        file=sys.stderr,
    )
    return 0


def _split_dirs(renders: Path) -> list[Path]:
    return sorted(p.parent for p in renders.glob("*/*/*/manifest.json"))


def cmd_verify(args: argparse.Namespace) -> int:
    from miad.data.manifest import verify_split

    targets = [Path(p) for p in args.paths] or _split_dirs(Path(args.renders))
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

    params = _params(args)
    scenarios = args.scenario or list(params.scenarios)
    count = export_mvtec(Path(args.renders), args.variant, scenarios, Path(args.directory), force=args.force)
    print(f"wrote {count} images in the MVTec AD layout to {args.directory}", file=sys.stderr)
    return 0


def cmd_assets(args: argparse.Namespace) -> int:
    from miad import assets

    root, dvc_file = Path(args.data), Path(args.dvc_file)
    if args.action == "build":
        names = assets.build(root)
        print(f"built {len(names)} asset files in {root}", file=sys.stderr)
    elif args.action == "check":
        assets.check(root, dvc_file)
        print(f"{root} matches {dvc_file}", file=sys.stderr)
    elif args.action == "pin":
        assets.build(root)
        subprocess.run(dvc_command("add", "-q", str(root)), check=True)
        text = dvc_file.read_text(encoding="utf-8").split("\nmeta:")[0].rstrip("\n")
        listing = "\n".join(f"    {name}: {md5}" for name, md5 in assets.listing(root).items())
        dvc_file.write_text(f"{text}\nmeta:\n  files:\n{listing}\n", encoding="utf-8")
        print(f"pinned {root} in {dvc_file}", file=sys.stderr)
    else:  # restore
        restore_assets(root, dvc_file)
    return 0


def dvc_command(*args: str) -> list[str]:
    """`dvc ARGS` through the interpreter running miad, so an unactivated `.venv/bin/miad` finds DVC."""
    return [sys.executable, "-m", "dvc", *args]


def restore_assets(root: Path, dvc_file: Path) -> None:
    """Make `root` match data.dvc: keep it if it does, else `dvc pull` from a remote, else rebuild here."""
    from miad import assets

    pinned = assets.pinned_files(dvc_file)
    if root.is_dir() and not assets.compare(root, pinned):
        print(f"{root} is up to date with {dvc_file}", file=sys.stderr)
        return
    remotes = subprocess.run(dvc_command("remote", "list"), capture_output=True, text=True, check=False).stdout.strip()
    if remotes:
        pulled = subprocess.run(dvc_command("pull", "-q", str(dvc_file)), check=False).returncode == 0
        if pulled and not assets.compare(root, pinned):
            print(f"restored {root} from the DVC remote", file=sys.stderr)
            return
        print("dvc pull did not restore the assets; building them here instead", file=sys.stderr)
    assets.build(root)
    assets.check(root, dvc_file)
    subprocess.run(dvc_command("commit", "-q", "-f", str(dvc_file)), check=True)  # into the local DVC cache
    print(f"built {root} from its sources; it matches {dvc_file}", file=sys.stderr)


def cmd_train(args: argparse.Namespace) -> int:
    from miad.stages.train import train

    if args.training_seed < 0:
        raise UserError(f"--training-seed: expected a non-negative integer, got {args.training_seed}")
    params = _params(args).for_training_seed(args.training_seed)
    if args.all_scenarios == bool(args.scenario):
        raise UserError("give --scenario (repeatable) or --all-scenarios, not both and not neither")
    scenarios = list(params.scenarios) if args.all_scenarios else args.scenario
    train(
        params,
        args.method,
        args.variant,
        scenarios,
        Path(args.renders),
        Path(args.out),
        fraction=args.fraction,
        uncapped=args.no_cap,
    )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from miad.stages.evaluate import evaluate

    optional = {
        name: Path(value) if value else None
        for name, value in (("roc_csv", args.roc_csv), ("pro_csv", args.pro_csv), ("maps_out", args.maps))
    }
    result = evaluate(
        _params(args),
        args.method,
        args.variant,
        args.scenario,
        Path(args.renders),
        Path(args.model),
        Path(args.out),
        **optional,
    )
    print(json.dumps(result["metrics"], indent=1), file=sys.stderr)
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from miad.data.stats import collect_stats, rendered_datasets

    renders = Path(args.renders)
    if args.all:
        datasets = rendered_datasets(renders) if renders.is_dir() else []
    else:
        params = _params(args)
        datasets = [("main", s) for s in params.scenarios]
        datasets += [(v, s) for v in params.ablation.variants for s in params.ablation.scenarios]
    if args.variant:
        datasets = [d for d in datasets if d[0] in args.variant]
    if not datasets:
        raise UserError(f"no rendered datasets (both splits with manifests) under {renders}")
    stats = collect_stats(renders, datasets)
    print(f"{'dataset':42s} {'factors':9s} {'train':>5s} {'test':>5s} {'defect %':>9s} {'paper %':>8s} "
          f"{'coverage %':>10s}  leaks")  # fmt: skip
    for key, row in stats.items():
        ratio = row["test"]["defect_pixel_ratio"]
        coverage = row["test"]["object_coverage"]
        print(
            f"{key:42s} {'+'.join(row['factors']) or '-':9s} {row['train']['images']:5d} {row['test']['images']:5d} "
            f"{100 * ratio['mean'] if ratio else float('nan'):9.3f} {100 * row['paper_defect_pixel_ratio']:8.2f} "
            f"{100 * coverage['mean'] if coverage else float('nan'):10.1f}  "
            f"{'none' if row['leak_free'] else row['leaks']}"
        )
    leaking = [key for key, row in stats.items() if not row["leak_free"]]
    if leaking:
        raise UserError(f"train and test splits share angle bins, backgrounds or textures in: {leaking}")
    write_json_atomic(Path(args.out), stats)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from miad.reporting.report import build_report

    stats = Path(args.stats) if args.stats else None
    if stats is not None and not stats.is_file():
        raise UserError(f"{stats}: dataset statistics missing; run `miad stats` first (or pass --stats '')")
    build_report(
        _params(args), Path(args.runs), Path(args.size_runs), Path(args.maps), Path(args.renders), Path(args.out), stats
    )
    print(f"tables in {Path(args.out) / 'tables'}, figures in {Path(args.out) / 'figures'}", file=sys.stderr)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    if args.show < 0:
        raise UserError(f"--show: expected a non-negative number of rows, got {args.show}")
    if args.renders or args.models:
        return _compare_digests(args)
    if args.against:
        raise UserError("--against applies to --renders and --models (the reference's images or checkpoints)")
    from miad.numeric_env import provenance_summary
    from miad.reporting.compare import (
        compare_metrics,
        format_comparison,
        parse_tolerances,
        read_confidence,
        read_metrics,
        read_reference,
    )

    metrics_path = Path(args.metrics)
    ours = read_metrics(metrics_path)
    reference, described = read_reference(args.reference or "HEAD", metrics_path)
    tolerances = parse_tolerances(args.tolerance)
    confidence, source = read_confidence(args.confidence, Path(args.params), args.profile)
    comparison = compare_metrics(
        ours,
        reference,
        tolerances,
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


def _compare_digests(args: argparse.Namespace) -> int:
    from miad.reporting.digests_report import compare_workspace

    if args.exact or args.tolerance:
        raise UserError("--exact and --tolerance judge metrics; --renders and --models compare digests, bit for bit")
    report, identical = compare_workspace(
        Path(args.workspace),
        Path(args.digests),
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
    from miad.reporting.digests import record

    counts = record(Path(args.workspace), Path(args.out), progress=not args.no_progress)
    print(
        f"wrote {args.out}: {counts['images']} images ({counts['datasets']} datasets), {counts['tensors']} tensors "
        f"({counts['checkpoints']} checkpoints), made in {counts['environments']} environment(s); commit it to "
        "compare other machines' outputs with `miad compare --renders` / `--models`",
        file=sys.stderr,
    )
    return 0


PROFILE_LINE = re.compile(r"^profile:\s*(\S+)(.*)$", re.MULTILINE)


def cmd_profile(args: argparse.Namespace) -> int:
    path = Path(args.params)
    text = path.read_text(encoding="utf-8")
    match = PROFILE_LINE.search(text)
    if match is None:
        raise UserError(f"{path}: no top-level `profile:` line")
    if args.name is None:
        print(match.group(1))
        return 0
    updated = PROFILE_LINE.sub(lambda m: f"profile: {args.name}{m.group(2)}", text, count=1)
    load_params(path, profile=args.name)  # validate before writing
    path.write_text(updated, encoding="utf-8")
    print(f"{path}: profile is now {args.name}; `dvc repro` reruns the stages whose params changed", file=sys.stderr)
    return 0


def cmd_params(args: argparse.Namespace) -> int:
    from miad.config import to_dict

    params = _params(args)
    print(
        json.dumps(
            {
                "profile": params.profile,
                "seed": params.seed,
                "scenarios": params.scenarios,
                "methods": params.methods,
                params.profile: to_dict(params.active),
            },
            indent=2,
        )
    )
    return 0


# --- parser -------------------------------------------------------------------------------------------------


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="params.yaml", help="params file (default: %(default)s)")
    parser.add_argument("--profile", choices=PROFILES, help="override the params file's `profile`")


def _dataset_args(parser: argparse.ArgumentParser, *, scenario_required: bool = True) -> None:
    parser.add_argument("--scenario", required=scenario_required, choices=SCENARIO_NAMES, help="scenario key")
    parser.add_argument("--variant", default="main", choices=VARIANT_NAMES, help="dataset variant (default: main)")
    parser.add_argument("--renders", default="renders", help="root of rendered shards (default: %(default)s)")


def _executor_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--executor", choices=["local", "slurm"], help="where shard tasks run (default: params' executor.kind)"
    )
    parser.add_argument("--workers", type=int, help="local: shard tasks at once (default: params' executor.workers)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="miad", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
        "render": (cmd_render, "render one scenario's train/test shards (resumes; finished shards are skipped)"),
        "dataset": (cmd_dataset, "build one scenario's main dataset as params.yaml's `dataset` says: render or import"),
        "import": (cmd_import, "read an MVTec-layout class folder (MIAD release, MVTec AD) into our shards"),
        "verify": (cmd_verify, "check every shard and image against its sha256; name what is corrupt or missing"),
        "export": (cmd_export, "write rendered data in another folder layout (MVTec AD)"),
        "assets": (cmd_assets, "build, check or restore data/ (backgrounds, textures) against data.dvc"),
        "train": (cmd_train, "train one method on one scenario's train split; save safetensors + config"),
        "evaluate": (cmd_evaluate, "score a test split: image AUROC, Recall@1%%FPR, AUPRO@0.3, pixel AUROC"),
        "stats": (cmd_stats, "dataset statistics vs the paper (Table 2) and the train/test leak check, as JSON"),
        "report": (cmd_report, "write Tables 3-7 (ours beside the paper's), metrics.json and Figures 2, 4, 5"),
        "compare": (
            cmd_compare,
            "your metrics.json against a reference (a file or git revision), cell by cell; with --renders or "
            "--models, your images or checkpoints against the reference digests, bit for bit",
        ),
        "reference": (
            cmd_reference,
            "record per-image and per-tensor digests of renders/, models/ and models_size/ (results/reference/)",
        ),
        "repro": (
            cmd_repro,
            "run the stale DVC stages, several at once (local or Slurm), recorded as `dvc repro` would",
        ),
        "plan": (cmd_plan, "what a run costs per stage: tasks, CPU/GPU hours, memory, storage (from make bench)"),
        "profile": (cmd_profile, "show or switch the active profile (smoke | paper) in params.yaml"),
        "params": (cmd_params, "validate params.yaml and print the active profile's resolved values"),
    }
    parsers = {}
    for name, (handler, summary) in commands.items():
        parsers[name] = sub.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".")
        parsers[name].set_defaults(handler=handler)
        if name not in ("profile",):
            _common(parsers[name])
    _dataset_args(parsers["render"])
    parsers["render"].add_argument("--shard", help="render only this shard, e.g. train/0 (one task of a fan-out)")
    parsers["render"].add_argument("--threads", type=int, help="Cycles threads (changes no bit; default: params)")
    for name in ("render", "dataset"):
        _executor_args(parsers[name])
    parsers["plan"].add_argument("--json", action="store_true", help="every stage's bill as JSON")
    parsers["repro"].add_argument("targets", nargs="*", help="stages or dvc.yaml files (default: the whole pipeline)")
    parsers["repro"].add_argument("--executor", choices=["local", "slurm"], help="default: params' executor.kind")
    parsers["repro"].add_argument("--jobs", "-j", type=int, help="stages at once (default: params' executor.workers)")
    parsers["repro"].add_argument(
        "--dry-run", action="store_true", help="list the plan, each stage stale or unchanged now; run nothing"
    )
    parsers["repro"].add_argument("--stats-json", help="also write per-stage timings to this JSON file")
    parsers["render"].add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parsers["render"].add_argument("--stats-json", help="also write timings (wall, inside Cycles) to this JSON file")
    parsers["dataset"].add_argument("--scenario", required=True, choices=SCENARIO_NAMES, help="scenario key")
    parsers["dataset"].add_argument("--renders", default="renders", help="root of datasets (default: %(default)s)")
    parsers["dataset"].add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parsers["dataset"].add_argument("--stats-json", help="rendered: also write timings to this JSON file")
    parsers["import"].add_argument("source", help="an MVTec-layout class folder: train/good, test/<type>, ground_truth")
    parsers["import"].add_argument("--layout", required=True, choices=["mvtec"], help="folder layout to read")
    parsers["import"].add_argument(
        "--scenario", choices=SCENARIO_NAMES, help="the scenario it fills (default: from a MIAD class folder's name)"
    )
    parsers["import"].add_argument("--variant", default="main", choices=VARIANT_NAMES)
    parsers["import"].add_argument("--renders", default="renders", help="root of datasets (default: %(default)s)")
    parsers["import"].add_argument("--check", action="store_true", help="only check the layout and count images")
    parsers["import"].add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parsers["verify"].add_argument("paths", nargs="*", help="split folders to check (default: all under --renders)")
    parsers["verify"].add_argument("--renders", default="renders", help="root of rendered shards")
    parsers["export"].add_argument("directory", help="output folder (must not exist unless --force)")
    parsers["export"].add_argument("--layout", required=True, choices=["mvtec"], help="folder layout to write")
    parsers["export"].add_argument(
        "--scenario",
        action="append",
        choices=SCENARIO_NAMES,
        help="scenario to export (repeatable; default: all in params)",
    )
    parsers["export"].add_argument("--variant", default="main", choices=VARIANT_NAMES)
    parsers["export"].add_argument("--renders", default="renders")
    parsers["export"].add_argument("--force", action="store_true", help="replace an existing output folder")
    parsers["assets"].add_argument(
        "action",
        choices=["restore", "build", "check", "pin"],
        help="restore: match data.dvc (pull or build); build: regenerate; "
        "check: compare with data.dvc; pin: rebuild and rewrite data.dvc",
    )
    parsers["assets"].add_argument("--data", default="data", help="asset folder (default: %(default)s)")
    parsers["assets"].add_argument("--dvc-file", default="data.dvc", help="DVC file pinning it")
    for name in ("train", "evaluate"):
        parsers[name].add_argument("--method", required=True, choices=TRAINABLE, help="method name")
    parsers["train"].add_argument(
        "--scenario",
        action="append",
        choices=SCENARIO_NAMES,
        help="scenario whose train split to use (repeatable: a unified model)",
    )
    parsers["train"].add_argument("--all-scenarios", action="store_true", help="train on every scenario in params")
    parsers["train"].add_argument("--variant", default="main", choices=VARIANT_NAMES)
    parsers["train"].add_argument("--renders", default="renders", help="root of rendered shards")
    parsers["train"].add_argument(
        "--fraction",
        type=float,
        default=1.0,
        help="train on this prefix of each training split (Table 7; default: 1.0)",
    )
    parsers["train"].add_argument(
        "--no-cap", action="store_true", help="ignore max_train_images (PatchCore's 2000-image cap)"
    )
    parsers["train"].add_argument(
        "--training-seed",
        type=int,
        default=0,
        metavar="K",
        help="train with the K-th training seed (0, the default: the main models; see extra_training_seeds)",
    )
    parsers["train"].add_argument("--out", required=True, help="checkpoint folder to (re)write")
    _dataset_args(parsers["evaluate"])
    parsers["evaluate"].add_argument("--model", required=True, help="checkpoint folder written by `miad train`")
    parsers["evaluate"].add_argument("--out", required=True, help="result JSON to write")
    parsers["evaluate"].add_argument("--roc-csv", help="also write the ROC curve here (CSV: fpr,tpr)")
    parsers["evaluate"].add_argument("--pro-csv", help="also write the PRO curve here (CSV: fpr,pro)")
    parsers["evaluate"].add_argument("--maps", help="also write a few anomaly maps here (safetensors; Figures 4-5)")
    parsers["stats"].add_argument("--renders", default="renders", help="root of rendered shards (default: %(default)s)")
    parsers["stats"].add_argument("--out", default="results/dataset_stats.json", help="JSON to write")
    parsers["stats"].add_argument("--variant", action="append", choices=VARIANT_NAMES, help="only these variants")
    parsers["stats"].add_argument(
        "--all", action="store_true", help="every dataset found under --renders (default: those params.yaml lists)"
    )
    parsers["report"].add_argument("--stats", default="results/dataset_stats.json", help="`miad stats` output to show")
    parsers["report"].add_argument("--runs", default="results/runs", help="evaluation results (default: %(default)s)")
    parsers["report"].add_argument("--size-runs", default="results/runs_size", help="Table 7 evaluation results")
    parsers["report"].add_argument("--maps", default="results/maps", help="anomaly maps kept for Figures 4-5")
    parsers["report"].add_argument("--renders", default="renders")
    parsers["report"].add_argument("--out", default="results", help="output root (default: %(default)s)")
    parsers["compare"].add_argument("--metrics", default="results/metrics.json", help="yours (default: %(default)s)")
    parsers["compare"].add_argument(
        "--reference",
        help="metrics: a metrics file, or a git revision whose copy of --metrics to read (default: HEAD, the "
        "committed one); --renders/--models: a git revision whose copy of the --digests files to read, or a folder "
        "holding renders.tsv/models.tsv (default: the working tree's --digests folder; HEAD compares with the "
        "committed digests even after `miad reference record` rewrote them)",
    )
    parsers["compare"].add_argument(
        "--tolerance",
        action="append",
        metavar="[METRIC=]VALUE",
        help="absolute tolerance of the bitwise verdict, for every number or one metric (repeatable; default: 0, "
        "identical); also judges metric cells that have no interval on either side",
    )
    parsers["compare"].add_argument(
        "--exact",
        action="store_true",
        help="decide by the bitwise verdict: every number, interval bounds included, identical (same bytes on "
        "every machine); default: the statistical verdict (cells judged against their intervals, the count of "
        "cells outside tested against the confidence level)",
    )
    parsers["compare"].add_argument(
        "--confidence",
        type=float,
        help="confidence level of the intervals in both files (default: the active profile's "
        "evaluate.confidence in --params, else 0.95)",
    )
    parsers["compare"].add_argument(
        "--alpha",
        type=float,
        default=0.05,
        help="significance level of the binomial test of the count of cells outside (default: %(default)s)",
    )
    parsers["compare"].add_argument("--runs", default="results/runs", help="where to read your runs' provenance")
    parsers["compare"].add_argument(
        "--renders",
        action="store_true",
        help="compare your renders/ with the reference digests (results/reference/renders.tsv): every image's "
        "decoded pixels and mask; per dataset identical / differ / missing / extra",
    )
    parsers["compare"].add_argument(
        "--models",
        action="store_true",
        help="compare your models/ and models_size/ checkpoints with the reference digests "
        "(results/reference/models.tsv), tensor by tensor",
    )
    parsers["compare"].add_argument(
        "--against",
        metavar="DIR",
        help="the reference's own outputs, to measure how far differing ones lie apart: a renders folder (or a "
        "clone holding renders/) for --renders: max |diff|, PSNR, pixels changed; a folder holding models/ and "
        "models_size/ for --models: max |diff| per checkpoint and tensor",
    )
    parsers["compare"].add_argument(
        "--workspace", default=".", help="the clone whose renders/, models/, models_size/ to compare (default: .)"
    )
    parsers["compare"].add_argument(
        "--digests", default="results/reference", help="where the reference digest files live (default: %(default)s)"
    )
    parsers["compare"].add_argument(
        "--show", type=int, default=40, metavar="N", help="list at most N rows per table (default: %(default)s)"
    )
    parsers["compare"].add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parsers["compare"].epilog = (
        "Exit status: 0 when every cell is reproduced (metrics) or every image / tensor is identical to the "
        "reference's (--renders, --models), 1 when something differs or is missing, 2 when a file, folder or "
        "revision cannot be read. Renders are compared by the digest of their decoded pixels, so another PNG "
        "encoding of the same pixels is identical; with --against the differing ones are decoded on both sides."
    )
    parsers["reference"].add_argument(
        "action",
        choices=["record"],
        help="record: write renders.tsv (per image: decoded image and mask digests), models.tsv (per tensor) and "
        "machine.json (the environments that made the outputs, from their provenance sidecars) into --out",
    )
    parsers["reference"].add_argument(
        "--workspace", default=".", help="the clone whose renders/, models/, models_size/ to record (default: .)"
    )
    parsers["reference"].add_argument(
        "--out", default="results/reference", help="folder to write (default: %(default)s)"
    )
    parsers["reference"].add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parsers["profile"].add_argument("name", nargs="?", choices=PROFILES, help="profile to switch to")
    parsers["profile"].add_argument("--params", default="params.yaml")
    register_remote(sub)  # remote, pull, publish, reproduce (miad.remote)
    register_weights(sub)  # weights (miad.weights)
    register_rehearsal(sub)  # rehearse (miad.rehearsal)
    return parser


TIMINGS_ENV = "MIAD_TIMINGS"  # a JSONL file: every finished command appends its wall time (benchmarks/)


def log_timing(args: argparse.Namespace, argv: Sequence[str] | None, seconds: float) -> None:
    """Append {argv, seconds, extra} to $MIAD_TIMINGS when set, so a benchmark can time `dvc repro` stage by stage."""
    target = os.environ.get(TIMINGS_ENV)
    if target:
        row = {
            "argv": list(sys.argv[1:] if argv is None else argv),
            "command": args.command,
            "seconds": seconds,
            "extra": getattr(args, "timing_extra", None),
        }
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")


def pin_numeric_environment(args: argparse.Namespace) -> None:
    """Pin dispatch levels and thread counts (params' `numeric` section) before any numeric library loads."""
    from miad import numeric_env
    from miad.config import NumericConfig

    threads = NumericConfig().threads
    if getattr(args, "params", None) and Path(args.params).is_file():
        threads = _params(args).active.numeric.threads
    numeric_env.pin(threads)


def provenance_target(args: argparse.Namespace) -> tuple[Path, bool] | None:
    """(output whose provenance sidecar a command writes, append to earlier runs?) or None."""
    if args.command in ("render", "dataset") and not getattr(args, "shard", None):
        return Path(args.renders) / args.variant / args.scenario, True  # shards may come from several processes
    if args.command == "import" and not args.check:
        return Path(args.renders) / args.variant / args.scenario, False  # cmd_import resolved the scenario
    if args.command in ("train", "evaluate"):
        return Path(args.out), False
    if args.command == "report":
        return Path(args.out) / "metrics.json", False
    return None


def coordinates_shards(args: argparse.Namespace) -> bool:
    """Whether this render command hands its shards to an executor (Slurm, several local workers) rather than
    rendering them itself: then it runs on the host, and each shard task (`miad render --shard`) in the image."""
    if args.command not in ("render", "dataset") or getattr(args, "shard", None):
        return False
    if args.command == "dataset" and _params(args).dataset.source != "rendered":
        return False
    from miad.render.fanout import executor_config, fans_out

    return fans_out(executor_config(Path(args.params), kind=args.executor, workers=args.workers))


def user_errors() -> tuple[type[Exception], ...]:
    """Errors caused by input, printed without a traceback (imported only when one is raised: numpy and OpenCV
    must not load before the numeric environment is pinned)."""
    from miad.assets import AssetMismatchError
    from miad.data.shards import ShardError
    from miad.executors.base import TaskError
    from miad.importing.mvtec import LayoutError
    from miad.launcher.run import LaunchError
    from miad.rehearsal import RehearsalError
    from miad.remote.settings import RemoteError
    from miad.reporting.compare import CompareError
    from miad.weights.fetch import WeightsError

    return (
        UserError,
        ConfigError,
        ShardError,
        AssetMismatchError,
        CompareError,
        LayoutError,
        RemoteError,
        WeightsError,
        TaskError,
        LaunchError,
        RehearsalError,
        FileNotFoundError,
        FileExistsError,
    )


def main(argv: Sequence[str] | None = None, *, pin_environment: bool = False) -> int:
    """Run one command; `pin_environment` (the `miad` program) first pins this process's numeric environment."""
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    try:
        if pin_environment:
            pin_numeric_environment(args)
        contained = None
        if not coordinates_shards(args):  # a coordinator stays here (it submits); its shard tasks run in the image
            contained = run_in_container(args.command, sys.argv[1:] if argv is None else argv, lambda: _params(args))
        if contained is not None:  # MIAD_RUNTIME=docker: the stage ran in its image (miad.runtime)
            log_timing(args, argv, time.perf_counter() - start)
            return contained
        code = args.handler(args)
        target = provenance_target(args)
        if code == 0 and target is not None:
            from miad.numeric_env import write_provenance

            write_provenance(target[0], append=target[1], command=["miad", *(sys.argv[1:] if argv is None else argv)])
        log_timing(args, argv, time.perf_counter() - start)
        return code
    except user_errors() as exc:
        print(f"miad {args.command}: error: {exc}", file=sys.stderr)
        return 2


def entry() -> int:
    """The `miad` program: a process of its own, so its numeric environment is pinned before anything loads."""
    return main(pin_environment=True)


if __name__ == "__main__":
    sys.exit(entry())
