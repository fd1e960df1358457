"""data/ against data.dvc: restore it (keep, `dvc pull`, or rebuild), or rebuild it and pin the new listing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from miad import assets
from miad.dvcfiles import dvc_command, write_meta


def restore_assets(root: Path, dvc_file: Path) -> None:
    """Make `root` match data.dvc: keep it if it does, else `dvc pull` from a remote, else rebuild here."""
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


def pin_assets(root: Path, dvc_file: Path) -> None:
    """Rebuild `root`, `dvc add` it, and record every file's md5 in the .dvc file's `meta` (what `check` compares)."""
    assets.build(root)
    subprocess.run(dvc_command("add", "-q", str(root)), check=True)
    write_meta(dvc_file, {"files": assets.listing(root)})
