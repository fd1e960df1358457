"""`miad plan`: what a profile costs per stage before it runs (argument parsing only)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from miad.cliargs import Subparsers, add_command, params_of


def cmd_plan(args: argparse.Namespace) -> int:
    from miad.plan.estimate import estimate_pipeline
    from miad.plan.schedule import wall_hours
    from miad.plan.table import over_memory, render_table, totals

    params = params_of(args)
    task_memory_gb = params.executor.slurm.mem_gb
    rows = estimate_pipeline(Path.cwd(), params)
    walls = {cores: wall_hours(rows, cores) for cores in sorted(set(args.cores or DEFAULT_CORES))}
    if args.json:
        heavy = [r.stage for r in over_memory(rows, task_memory_gb)]
        bill = {"profile": params.profile, "total": totals(rows), "stages": [r.as_dict() for r in rows]}
        print(json.dumps({**bill, "wall_hours": walls, "task_memory_gb": task_memory_gb, "over_task_memory": heavy}))
    else:
        print(render_table(rows, params.profile, task_memory_gb, walls))
    return 0


DEFAULT_CORES = (2, 16)


def _cores(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a core count of at least 1, got {text}")
    return value


def register(sub: Subparsers) -> None:
    """Add `miad plan` to miad's subcommands."""
    parser = add_command(
        sub, "plan", cmd_plan, "what a run costs per stage: tasks, CPU/GPU hours, memory, storage (from make bench)"
    )
    parser.add_argument("--json", action="store_true", help="every stage's bill as JSON")
    parser.add_argument(
        "--cores",
        type=_cores,
        action="append",
        metavar="N",
        help="price the wall-clock time on a machine of N cores (repeatable; default: 2 and 16): the larger of the "
        "core-hours over N and the longest chain of stages (docs/benchmarks.md compares it with measured runs)",
    )
