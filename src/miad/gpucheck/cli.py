"""`miad gpucheck [--dir DIR] [--images N]`: the prepared first check of a lent NVIDIA GPU (parsing only)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from miad.cliargs import Subparsers, add_command


def cmd_gpucheck(args: argparse.Namespace) -> int:
    from miad.gpucheck.run import run_check
    from miad.project import project_root

    summary = run_check(project_root(Path.cwd()), Path(args.dir) if args.dir else None, args.images)
    print(json.dumps(summary, indent=2))
    train = summary["train"]
    ok = train["checkpoint_identical"] and train["maps_identical"] and all("error" not in r for r in summary["render"])
    print(f"gpucheck: {'PASS' if ok else 'FAIL'} in {summary['seconds']:.0f}s; details in {summary['folder']}")
    return 0 if ok else 1


def register(sub: Subparsers) -> None:
    """Add `miad gpucheck` to miad's subcommands."""
    parser = add_command(
        sub,
        "gpucheck",
        cmd_gpucheck,
        "first check of a lent NVIDIA GPU: render with OptiX and CUDA, train and evaluate twice (determinism)",
        params=False,
    )
    parser.add_argument("--dir", help="work folder for renders and checkpoints (default: a new temp folder)")
    parser.add_argument("--images", type=int, default=16, help="training images to render (default: %(default)s)")
