"""`make reproduce`: pull what the configured remote holds, restore the asset library, compute the rest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from miad.dvcfiles import dvc_command
from miad.remote.sync import pull


def miad_command(*args: str) -> list[str]:
    """The `miad` program (numeric environment pinned) through this interpreter."""
    return [sys.executable, "-m", "miad.cli", *args]


def reproduce(repo: Path, remote_name: str | None = None, *, pull_first: bool = True, jobs: int | None = None) -> int:
    """Pull (when a remote is configured), `miad assets restore`, `dvc repro`; the exit status of the first failure."""
    if pull_first:
        report = pull(repo, remote_name, jobs)
        if report.remote is None:
            print("no DVC remote configured: every stage is computed here", file=sys.stderr)
        else:
            print(
                f"pulled from {report.remote.describe()}: {report.fetched_objects} new object(s); "
                f"{len(report.missing)} output(s) it lacks are computed here",
                file=sys.stderr,
            )
    for command in (miad_command("assets", "restore"), dvc_command("repro")):
        code = subprocess.run(command, cwd=repo, check=False, stdin=subprocess.DEVNULL).returncode
        if code != 0:
            return code
    return 0
