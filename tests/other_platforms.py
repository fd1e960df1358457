"""Running tests/cross_cpu_probe.py on another platform (a qemu CPU model, another C library) and judging the result
against this machine's run: shared by tests/test_cross_cpu.py and tests/test_other_glibc.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.project_copy import REPO

PROBE = Path(__file__).with_name("cross_cpu_probe.py")
# Renders only: a ray that grazes an edge can hit on one platform and miss on another (see the tests' docstrings)
MAX_CHANGED_PIXELS = 4  # per probe render (64 x 64 under qemu, 128 x 128 under the other glibc)
MIN_PSNR_DB = 40.0


def run_probe(prefix: list[str], part: str, out: Path) -> Path:
    """Run one part of the probe, its Python started through `prefix` (e.g. ["qemu-x86_64", "-cpu", "Haswell"])."""
    command = [*prefix, sys.executable, str(PROBE), part, str(out), str(REPO / "data")]
    env = {**os.environ, "MIAD_UNPINNED": "1"} if part == "assets" else dict(os.environ)
    proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=1800)
    where = " ".join(prefix) or "native"
    assert proc.returncode == 0, f"{where} {part} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return out


def differing_digests(ours: Path, theirs: Path) -> list[str]:
    """Names whose digests differ between two probe outputs (which must name the same things)."""
    a, b = json.loads(ours.read_text()), json.loads(theirs.read_text())
    assert a.keys() == b.keys()
    return sorted(k for k in a if a[k] != b[k])


def picture_problems(ours: Path, theirs: Path, where: str, exact: tuple[str, ...] = ()) -> list[str]:
    """Renders of two probe runs that are not the same picture: a mask that differs, or an image with more than
    MAX_CHANGED_PIXELS changed pixels or a PSNR below MIN_PSNR_DB; for the scenarios in `exact`, any changed pixel.
    Empty when all are the same picture."""
    a, b = np.load(ours.with_suffix(".npz")), np.load(theirs.with_suffix(".npz"))
    assert sorted(a.files) == sorted(b.files) and len(a.files) >= 14
    problems = [
        f"{key}: the mask differs on {where}"
        for key in a.files
        if key.endswith("/mask") and not np.array_equal(a[key], b[key])
    ]
    for key in sorted(k for k in a.files if k.endswith("/image")):
        diff = np.abs(a[key].astype(np.int16) - b[key].astype(np.int16))
        changed = int(np.count_nonzero(diff.max(axis=-1)))
        mse = float(np.mean(diff.astype(np.float64) ** 2))
        psnr = np.inf if mse == 0 else 10 * np.log10(255.0**2 / mse)
        allowed = 0 if key.split("/")[0] in exact else MAX_CHANGED_PIXELS
        if changed > allowed or psnr < MIN_PSNR_DB:
            problems.append(
                f"{key} on {where}: {changed} pixels changed, max |diff| {int(diff.max())}, PSNR {psnr:.1f} dB"
            )
    return problems
