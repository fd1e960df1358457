"""`miad <command>`: parses the command line and hands it to the package that owns the command, nothing else.

Each package's `cli.py` registers its own subcommands (`register(sub)`) with the flags of `miad.cliargs`; a
subcommand may set `provenance` (which output gets a provenance sidecar) and `coordinates` (whether it only hands
shard tasks to an executor, so it stays on the host under MIAD_RUNTIME=docker) as parser defaults.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from miad.cliargs import params_of
from miad.errors import MiadError, interrupt_on_sigterm
from miad.runtime import run_in_container

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

COMMAND_MODULES = (  # in the order `miad --help` lists their commands
    "miad.render.cli",  # render
    "miad.stages.cli",  # dataset, train, evaluate
    "miad.importing.cli",  # import
    "miad.data.cli",  # verify, export, stats
    "miad.workspace.cli",  # profile, params, assets
    "miad.reporting.cli",  # report, compare, reference
    "miad.claims.cli",  # claims
    "miad.launcher.cli",  # repro
    "miad.plan.cli",  # plan
    "miad.remote.cli",  # remote, pull, publish
    "miad.weights.cli",  # weights
    "miad.rehearsal.cli",  # rehearse
    "miad.runtime.cli",  # images
    "miad.gpucheck.cli",  # gpucheck
)
USER_ERRORS = (MiadError, FileNotFoundError, FileExistsError)  # printed without a traceback, exit status 2
TIMINGS_ENV = "MIAD_TIMINGS"  # a JSONL file: every finished command appends its wall time (benchmarks/)


def build_parser() -> argparse.ArgumentParser:
    """`miad`'s parser: every package's subcommands."""
    parser = argparse.ArgumentParser(
        prog="miad", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def process_age() -> float | None:
    """Seconds since this process was created (Linux /proc; None elsewhere): its age minus the command's own time is
    what its start-up (interpreter, imports, parsing) cost."""
    try:
        stat = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return None
    return uptime - int(stat[19]) / os.sysconf("SC_CLK_TCK")  # field 22 (starttime), counted after the ")"


def log_timing(args: argparse.Namespace, argv: Sequence[str], seconds: float) -> None:
    """Append {argv, seconds, process_seconds, extra} to $MIAD_TIMINGS when set, so a benchmark can time `dvc repro`
    stage by stage and split each stage's process into start-up and command."""
    target = os.environ.get(TIMINGS_ENV)
    if target:
        row = {"argv": list(argv), "command": args.command, "seconds": seconds, "process_seconds": process_age()}
        row["extra"] = getattr(args, "timing_extra", None)
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")


def pin_numeric_environment(args: argparse.Namespace) -> None:
    """Pin dispatch levels and thread counts (params' `numeric` section) before any numeric library loads."""
    from miad import numeric_env
    from miad.config import NumericConfig

    threads = NumericConfig().threads
    if getattr(args, "params", None) and Path(args.params).is_file():
        threads = params_of(args).active.numeric.threads
    numeric_env.pin(threads)


def run_command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Run the parsed command here, or in its image (MIAD_RUNTIME=docker); write its provenance sidecar."""
    coordinates = getattr(args, "coordinates", None)
    if not (coordinates and coordinates(args)):  # a coordinator stays here; its shard tasks run in the image
        contained = run_in_container(args.command, argv, lambda: params_of(args))
        if contained is not None:
            return contained
    code = args.handler(args)
    provenance = getattr(args, "provenance", None)
    target = provenance(args) if provenance and code == 0 else None
    if target is not None:
        from miad.numeric_env import write_provenance

        write_provenance(target[0], append=target[1], command=["miad", *argv])
    return code


def main(argv: Sequence[str] | None = None, *, pin_environment: bool = False) -> int:
    """Run one command; `pin_environment` (the `miad` program) first pins this process's numeric environment."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    try:
        if pin_environment:
            pin_numeric_environment(args)
        code = run_command(args, argv)
    except USER_ERRORS as exc:
        print(f"miad {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (miad.errors.Interrupted): what we started is cancelled
        signum = getattr(exc, "signum", 2)
        print(f"miad {args.command}: interrupted (signal {signum}); what it started was stopped", file=sys.stderr)
        return 128 + signum
    log_timing(args, argv, time.perf_counter() - start)
    return code


def entry() -> int:
    """The `miad` program: a process of its own, so its numeric environment is pinned before anything loads, and
    SIGTERM (a cancelled stage, scancel) unwinds it like Ctrl-C."""
    interrupt_on_sigterm()
    return main(pin_environment=True)


if __name__ == "__main__":
    sys.exit(entry())
