"""Running `dvc` from the interpreter that runs miad, so an unactivated `.venv/bin/miad` finds it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from miad.dvcfiles import dvc_command

ERROR_LINES_SHOWN = 6  # how many of DVC's own error lines a wrapped error repeats


def run_dvc(repo: Path, *args: str, capture: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `dvc ARGS` in `repo`; with `capture`, stdout and stderr come back as text instead of being shown."""
    return subprocess.run(
        dvc_command(*args), cwd=repo, capture_output=capture, text=True, check=False, stdin=subprocess.DEVNULL
    )


def run_dvc_shown(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `dvc ARGS` in `repo`, showing its output as it comes and keeping it (as stdout) for an error message."""
    kept = []
    with subprocess.Popen(
        dvc_command(*args),
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    ) as proc:
        assert proc.stdout is not None  # stdout=PIPE
        for line in proc.stdout:
            sys.stderr.write(line)
            kept.append(line)
    return subprocess.CompletedProcess(proc.args, proc.returncode, "".join(kept), "")


def dvc_json(repo: Path, *args: str) -> Any:
    """Parsed `--json` output of a dvc command; None when it failed (the caller explains why)."""
    proc = run_dvc(repo, *args, "--json")
    if proc.returncode != 0:
        return None
    text = proc.stdout.strip()
    return json.loads(text) if text else {}


def error_lines(proc: subprocess.CompletedProcess[str]) -> str:
    """The ERROR/WARNING lines of a captured dvc run (or its last lines), for a wrapping message."""
    lines = [line.strip() for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("ERROR", "WARNING"))] or lines[-ERROR_LINES_SHOWN:]
    return "\n".join(f"    {line}" for line in errors[:ERROR_LINES_SHOWN]) or "    (dvc printed nothing)"
