"""`miad weights list | fetch`: argument parsing only (miad.cli registers it)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from miad.cliargs import Subparsers, add_command
from miad.weights.catalog import PAPER_WEIGHTS, default_target


def cmd_weights(args: argparse.Namespace) -> int:
    if args.action == "list":
        for name, source in PAPER_WEIGHTS.items():
            target = Path(default_target(name))
            state = "present" if target.is_file() else "absent"
            print(f"{name}: {target} ({state})\n  {source.url}\n  sha256 {source.sha256}...  {source.origin}")
        return 0
    from miad.weights.fetch import WeightsError
    from miad.weights.install import fetch_weights

    if not args.name:
        raise WeightsError(f"give the backbone(s) to fetch: {', '.join(PAPER_WEIGHTS)}")
    if len(args.name) > 1 and (args.url or args.out or args.sha256):
        raise WeightsError("--url, --sha256 and --out apply to one backbone at a time")
    for name in args.name:
        out = Path(args.out) if args.out else Path(default_target(name))
        fetched = fetch_weights(name, out, url=args.url, sha256=args.sha256, repo=None if args.no_dvc else Path.cwd())
        tracked = f"; tracked by {fetched.dvc_file} (commit it, then `make publish`)" if fetched.dvc_file else ""
        print(f"{name}: wrote {fetched.path} (source sha256 {fetched.source_sha256}){tracked}", file=sys.stderr)
    return 0


def register(sub: Subparsers) -> None:
    """Add `miad weights` to miad's subparsers."""
    summary = "fetch the paper backbones' ImageNet weights (checksum, safetensors, DVC-tracked) or list them"
    parser = add_command(sub, "weights", cmd_weights, summary, params=False)
    parser.add_argument("action", choices=["list", "fetch"], help="list: sources and targets; fetch: download")
    parser.add_argument("name", nargs="*", metavar="NAME", help=f"backbone(s) to fetch: {', '.join(PAPER_WEIGHTS)}")
    parser.add_argument("--url", help="fetch from this URL instead (a mirror); needs --sha256")
    parser.add_argument("--sha256", help="expected sha256 of the download (full, or a prefix of 8+ hex digits)")
    parser.add_argument("--out", help="safetensors file to write (default: weights/NAME.safetensors)")
    parser.add_argument("--no-dvc", action="store_true", help="only write the file; do not `dvc add` it")
