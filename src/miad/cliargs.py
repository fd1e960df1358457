"""The command-line flags shared by several `miad` commands, spelled once; each package's `cli.py` uses them."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

from miad.catalog import SCENARIO_NAMES, VARIANT_NAMES
from miad.config import EXECUTOR_KINDS, PROFILES, Params, load_params

Handler = Callable[[argparse.Namespace], int]
Subparsers = argparse._SubParsersAction  # what `add_subparsers` returns; argparse exports no public name


def add_command(
    sub: Subparsers, name: str, handler: Handler, summary: str, *, params: bool = True
) -> argparse.ArgumentParser:
    """A subcommand whose --help starts with `summary`; with `params`, it takes --params and --profile."""
    parser = sub.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".")
    parser.set_defaults(handler=handler)
    if params:
        add_params(parser)
    return parser


def add_params(parser: argparse.ArgumentParser, *, profile: bool = True) -> None:
    """--params FILE (and --profile NAME)."""
    parser.add_argument("--params", default="params.yaml", help="params file (default: %(default)s)")
    if profile:
        parser.add_argument("--profile", choices=PROFILES, help="override the params file's `profile`")


def params_of(args: argparse.Namespace) -> Params:
    """The validated params named by --params and --profile."""
    return load_params(args.params, profile=getattr(args, "profile", None))


def add_renders(parser: argparse.ArgumentParser) -> None:
    """--renders ROOT: where the datasets' shards live."""
    parser.add_argument("--renders", default="renders", help="root of the datasets' shards (default: %(default)s)")


def add_scenario(
    parser: argparse.ArgumentParser, *, required: bool = True, repeatable: bool = False, help: str
) -> None:
    """--scenario KEY, one of the seven scenarios (repeatable: a list)."""
    parser.add_argument(
        "--scenario", required=required, choices=SCENARIO_NAMES, action="append" if repeatable else "store", help=help
    )


def add_variant(parser: argparse.ArgumentParser) -> None:
    """--variant NAME: main or one of the ablation variants."""
    parser.add_argument("--variant", default="main", choices=VARIANT_NAMES, help="dataset variant (default: main)")


def add_only(parser: argparse.ArgumentParser, what: str, choices: Sequence[str], *, default: str = "all") -> None:
    """--WHAT NAME, repeatable: only these scenarios / variants / methods (default: `default`)."""
    parser.add_argument(
        f"--{what}", action="append", choices=choices, help=f"only this {what} (repeatable; default: {default})"
    )


def add_dataset(parser: argparse.ArgumentParser) -> None:
    """--scenario (required), --variant and --renders: one dataset."""
    add_scenario(parser, help="scenario key")
    add_variant(parser)
    add_renders(parser)


def add_no_progress(parser: argparse.ArgumentParser) -> None:
    """--no-progress: no progress bars (logs, CI)."""
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def add_executor(parser: argparse.ArgumentParser, *, what: str, workers: bool = True) -> None:
    """--executor local|slurm (and --workers N): where (and how many of) `what` run at once."""
    parser.add_argument("--executor", choices=EXECUTOR_KINDS, help=f"where {what} run (default: params' executor.kind)")
    if workers:
        parser.add_argument("--workers", type=int, help=f"local: {what} at once (default: params' executor.workers)")


def add_stats_json(parser: argparse.ArgumentParser, *, what: str) -> None:
    """--stats-json FILE: also write `what` as JSON."""
    parser.add_argument("--stats-json", help=f"also write {what} to this JSON file")


def output_of(args: argparse.Namespace) -> tuple[Path, bool]:
    """(--out, not appended): the provenance target of commands that write one output folder or file."""
    return Path(args.out), False
