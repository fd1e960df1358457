"""`miad images`: build the render and train images and record their IDs in docker/images.lock (parsing only)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from miad.cliargs import Subparsers, add_command


def cmd_images(args: argparse.Namespace) -> int:
    from miad.runtime.build import build_images

    try:
        built = build_images(
            Path(args.root), base=args.base, use_mirror=not args.no_mirror, write_lock=not args.no_lock
        )
    except RuntimeError as exc:  # the engine or a build failed: its own message says which and why
        print(f"miad images: {exc}", file=sys.stderr)
        return 1
    for b in built.values():
        print(f"{b.name}: {b.id} ({b.tag}), {b.size_bytes / 1e9:.2f} GB, built in {b.seconds:.0f}s")
    return 0


def register(sub: Subparsers) -> None:
    """Add `miad images` to miad's subcommands."""
    parser = add_command(
        sub,
        "images",
        cmd_images,
        "build the render and train images with this machine's pip configuration; record their IDs in "
        "docker/images.lock",
        params=False,
    )
    parser.add_argument("--root", default=".", help="the checkout to build from (default: %(default)s)")
    parser.add_argument("--base", help="base image instead of the Dockerfiles' digest-pinned default")
    parser.add_argument(
        "--no-mirror",
        action="store_true",
        help="leave out pip's extra indexes: every wheel from pip's index-url (or pip's default)",
    )
    parser.add_argument("--no-lock", action="store_true", help="do not rewrite docker/images.lock")
