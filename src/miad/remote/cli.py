"""`miad remote add`, `miad pull`, `miad publish`: argument parsing only (miad.cli registers it)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from miad.cliargs import Subparsers, add_command
from miad.remote.settings import add_remote
from miad.remote.sync import publish, pull


def cmd_remote(args: argparse.Namespace) -> int:
    remote = add_remote(Path.cwd(), args.name, args.url, endpoint=args.endpoint, default=args.default, force=args.force)
    print(
        f"added {remote.describe()} with verify = true to .dvc/config (commit it); put its credentials in the "
        "environment or .dvc/config.local, never in .dvc/config",
        file=sys.stderr,
    )
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    report = pull(Path.cwd(), args.remote, args.jobs)
    if report.remote is None:
        print("no DVC remote configured: nothing to pull", file=sys.stderr)
        return 0
    described = report.remote.describe()
    print(f"pulled {report.fetched_objects} new object(s) from {described}; all verified", file=sys.stderr)
    for path in report.missing:
        print(f"not on the remote (`dvc repro` computes it): {path}", file=sys.stderr)
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    left = publish(Path.cwd(), args.remote, args.jobs)
    return 1 if left and args.strict else 0


def _remote_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--remote", "-r", help="DVC remote name (default: DVC's default remote, or the only one)")
    parser.add_argument("--jobs", "-j", type=int, help="parallel transfers (default: DVC's)")


def register(sub: Subparsers) -> None:
    """Add this module's commands to miad's subparsers."""
    summaries = {
        "remote": (cmd_remote, "add a DVC remote (S3, S3-compatible, or a folder) with verify = true, no credentials"),
        "pull": (cmd_pull, "fetch and verify what the DVC remote holds, then check it out (corrupt data is named)"),
        "publish": (cmd_publish, "push data/, renders, models and results to the DVC remote"),
    }
    parsers = {}
    for name, (handler, summary) in summaries.items():
        parsers[name] = add_command(sub, name, handler, summary, params=False)
    remote = parsers["remote"]
    remote.add_argument("action", choices=["add"], help="what to do (add: `dvc remote add` + `verify = true`)")
    remote.add_argument("name", help="remote name, e.g. storage")
    remote.add_argument("url", help="s3://BUCKET/PREFIX, or a folder such as /mnt/shared/miad-dvc")
    remote.add_argument("--endpoint", help="endpointurl of an S3-compatible store (MinIO, Ceph, SeaweedFS)")
    remote.add_argument("--no-default", dest="default", action="store_false", help="do not make it the default")
    remote.add_argument("--force", action="store_true", help="replace an existing remote of that name")
    for name in ("pull", "publish"):
        _remote_args(parsers[name])
    parsers["publish"].add_argument(
        "--strict", action="store_true", help="exit 1 when some outputs are in neither the cache nor the remote"
    )
