"""The same bits on a busy machine: every method trained and evaluated (tests/cross_cpu_probe.py's `methods` part)
while other processes keep every core busy, against a quiet run.

Why: CI failed once on a busy 2-core Intel machine (one PatchCore score 2.8e-7 off), and passed on a quiet rerun.
Intel's MKL honoured the old `MKL_CBWR=AVX2`, whose reproducibility holds only for a constant thread count, and
`MKL_DYNAMIC` (on by default) let MKL pick the count at run time. The pin now sets `MKL_DYNAMIC=FALSE` and
`OMP_DYNAMIC=FALSE` (tests/test_numeric_env.py checks MKL's own report of both); this test checks the outcome.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.other_platforms import differing_digests, run_probe

pytestmark = pytest.mark.slow

BUSY = "import time\nend = time.monotonic() + 600\nwhile time.monotonic() < end:\n    pass\n"  # stops by itself


def test_methods_give_the_same_bits_under_a_competing_load(tmp_path: Path) -> None:
    quiet = run_probe([], "methods", tmp_path / "quiet.json")
    hogs = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(2 * (os.cpu_count() or 1))]
    try:
        loaded = run_probe([], "methods", tmp_path / "loaded.json")
        assert all(hog.poll() is None for hog in hogs), "the competing load ended before the loaded run did"
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert differing_digests(quiet, loaded) == []
