"""`miad dataset`, `miad train`, `miad evaluate`: the pipeline's per-dataset stages (argument parsing only)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from miad.cliargs import (
    Subparsers,
    add_command,
    add_dataset,
    add_renders,
    add_scenario,
    add_variant,
    output_of,
    params_of,
)
from miad.errors import UserError
from miad.method_catalog import TRAINABLE
from miad.render.cli import add_render_args, cmd_render, coordinates_shards, dataset_provenance


def _renders_main_dataset(args: argparse.Namespace) -> bool:
    return params_of(args).dataset.source == "rendered"


def cmd_dataset(args: argparse.Namespace) -> int:
    """One scenario's main dataset from where params.yaml's `dataset.source` says: rendered here, or imported."""
    from miad.importing.cli import import_folder

    if _renders_main_dataset(args):
        return cmd_render(args)
    params = params_of(args)
    source = Path(params.dataset.imports) / args.scenario
    import_folder(
        source, args.scenario, Path(args.renders), "main", params.active.render.shard_size, not args.no_progress
    )
    return 0


def dataset_coordinates_shards(args: argparse.Namespace) -> bool:
    """A rendered dataset may fan its shards out (see `miad.render.cli.coordinates_shards`); an import never does."""
    return _renders_main_dataset(args) and coordinates_shards(args)


def cmd_train(args: argparse.Namespace) -> int:
    from miad.stages.train import train

    if args.training_seed < 0:
        raise UserError(f"--training-seed: expected a non-negative integer, got {args.training_seed}")
    params = params_of(args).for_training_seed(args.training_seed)
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
    where = (args.method, args.variant, args.scenario, Path(args.renders), Path(args.model), Path(args.out))
    result = evaluate(params_of(args), *where, **optional)
    print(json.dumps(result["metrics"], indent=1), file=sys.stderr)
    return 0


def register(sub: Subparsers) -> None:
    """Add `miad dataset`, `miad train` and `miad evaluate` to miad's subcommands."""
    dataset = add_command(
        sub,
        "dataset",
        cmd_dataset,
        "build one scenario's main dataset as params.yaml's `dataset` says: render or import",
    )
    add_scenario(dataset, help="scenario key")
    add_renders(dataset)
    add_render_args(dataset)
    dataset.set_defaults(variant="main", provenance=dataset_provenance, coordinates=dataset_coordinates_shards)

    train = add_command(
        sub, "train", cmd_train, "train one method on one scenario's train split; save safetensors + config"
    )
    train.add_argument("--method", required=True, choices=TRAINABLE, help="method name")
    add_scenario(
        train, required=False, repeatable=True, help="scenario whose train split to use (repeatable: a unified model)"
    )
    train.add_argument("--all-scenarios", action="store_true", help="train on every scenario in params")
    add_variant(train)
    add_renders(train)
    train.add_argument(
        "--fraction",
        type=float,
        default=1.0,
        help="train on this prefix of each training split (Table 7; default: 1.0)",
    )
    train.add_argument("--no-cap", action="store_true", help="ignore max_train_images (PatchCore's 2000-image cap)")
    train.add_argument(
        "--training-seed",
        type=int,
        default=0,
        metavar="K",
        help="train with the K-th training seed (0, the default: the main models; see extra_training_seeds)",
    )
    train.add_argument("--out", required=True, help="checkpoint folder to (re)write")
    train.set_defaults(provenance=output_of)

    evaluate = add_command(
        sub, "evaluate", cmd_evaluate, "score a test split: image AUROC, Recall@1%%FPR, AUPRO@0.3, pixel AUROC"
    )
    evaluate.add_argument("--method", required=True, choices=TRAINABLE, help="method name")
    add_dataset(evaluate)
    evaluate.add_argument("--model", required=True, help="checkpoint folder written by `miad train`")
    evaluate.add_argument("--out", required=True, help="result JSON to write")
    evaluate.add_argument("--roc-csv", help="also write the ROC curve here (CSV: fpr,tpr)")
    evaluate.add_argument("--pro-csv", help="also write the PRO curve here (CSV: fpr,pro)")
    evaluate.add_argument("--maps", help="also write a few anomaly maps here (safetensors; Figures 4-5)")
    evaluate.set_defaults(provenance=output_of)
