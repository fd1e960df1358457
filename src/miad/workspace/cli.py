"""`miad profile`, `miad params`, `miad assets`: the working copy's params and data/ (argument parsing only)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from miad.cliargs import Subparsers, add_command, add_params, params_of
from miad.config import PROFILES


def cmd_profile(args: argparse.Namespace) -> int:
    from miad.workspace.profile import active_profile, switch_profile

    path = Path(args.params)
    if args.name is None:
        print(active_profile(path))
        return 0
    switch_profile(path, args.name)
    print(f"{path}: profile is now {args.name}; `dvc repro` reruns the stages whose params changed", file=sys.stderr)
    return 0


def cmd_params(args: argparse.Namespace) -> int:
    from miad.config import to_dict

    params = params_of(args)
    resolved = {"profile": params.profile, "seed": params.seed, "scenarios": params.scenarios}
    resolved |= {"methods": params.methods, params.profile: to_dict(params.active)}
    print(json.dumps(resolved, indent=2))
    return 0


def cmd_assets(args: argparse.Namespace) -> int:
    from miad import assets
    from miad.workspace.assets import pin_assets, restore_assets

    root, dvc_file = Path(args.data), Path(args.dvc_file)
    if args.action == "build":
        print(f"built {len(assets.build(root))} asset files in {root}", file=sys.stderr)
    elif args.action == "check":
        assets.check(root, dvc_file)
        print(f"{root} matches {dvc_file}", file=sys.stderr)
    elif args.action == "pin":
        pin_assets(root, dvc_file)
        print(f"pinned {root} in {dvc_file}", file=sys.stderr)
    else:
        restore_assets(root, dvc_file)
    return 0


def register(sub: Subparsers) -> None:
    """Add `miad profile`, `miad params` and `miad assets` to miad's subcommands."""
    profile = add_command(
        sub, "profile", cmd_profile, "show or switch the active profile (smoke | paper) in params.yaml", params=False
    )
    profile.add_argument("name", nargs="?", choices=PROFILES, help="profile to switch to")
    add_params(profile, profile=False)
    add_command(sub, "params", cmd_params, "validate params.yaml and print the active profile's resolved values")
    assets = add_command(
        sub, "assets", cmd_assets, "build, check or restore data/ (backgrounds, textures) against data.dvc"
    )
    assets.add_argument(
        "action",
        choices=["restore", "build", "check", "pin"],
        help="restore: match data.dvc (pull or build); build: regenerate; "
        "check: compare with data.dvc; pin: rebuild and rewrite data.dvc",
    )
    assets.add_argument("--data", default="data", help="asset folder (default: %(default)s)")
    assets.add_argument("--dvc-file", default="data.dvc", help="DVC file pinning it (default: %(default)s)")
