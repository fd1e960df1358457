"""Another C library: the methods and a render of every scenario under the other Debian release's glibc (2.41 on
Debian 12, 2.36 on Debian 13), through that glibc's own dynamic loader, against this machine's run.

Why: glibc 2.41 made atan2f, acosf, tanf and a dozen other float functions correctly rounded, so their bits changed.
Blender called atan2f to decompose every camera and lamp matrix into Euler angles, which moved whole images on
Debian 13; poses are now computed in double precision (miad.render.pose) and the training code calls none of them,
so the methods must give the same bits, and so must night scenes. One layer stays: Cycles' environment texture (the
day sky) looks up each ray with the C library's atan2f and acosf, so a few pixels of day scenes may differ: the
same-picture rule of other CPUs (tests/other_platforms.py).
.ci/other-glibc unpacks that C library into /opt/miad-ci/other-glibc (or set MIAD_OTHER_GLIBC).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from miad.catalog import SCENARIOS
from tests.other_platforms import differing_digests, picture_problems, run_probe

pytestmark = pytest.mark.slow

GLIBC_DIR = Path(os.environ.get("MIAD_OTHER_GLIBC", "/opt/miad-ci/other-glibc"))


@pytest.fixture(scope="module")
def loader() -> list[str]:
    """The command prefix that starts a program on the other glibc; skips where there is none."""
    ld_so = GLIBC_DIR / "ld-linux-x86-64.so.2"
    if not ld_so.is_file():
        pytest.skip(f"no other C library at {GLIBC_DIR}: run .ci/other-glibc as root")
    prefix = [str(ld_so), "--library-path", str(GLIBC_DIR)]
    proc = subprocess.run(
        [*prefix, sys.executable, "-c", "import platform; print(platform.libc_ver()[1])"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0 and "GLIBC_" in proc.stderr:  # an older glibc than this Python was built against
        pytest.skip(f"this Python cannot start on the C library in {GLIBC_DIR}: {proc.stderr.strip()[-300:]}")
    assert proc.returncode == 0, proc.stderr
    libc = proc.stdout.strip()
    assert libc and libc != platform.libc_ver()[1], f"{GLIBC_DIR} holds this machine's own glibc {libc}"
    return prefix


def test_methods_on_the_other_glibc(loader: list[str], tmp_path: Path) -> None:
    ours = run_probe([], "methods", tmp_path / "native.json")
    assert differing_digests(ours, run_probe(loader, "methods", tmp_path / "other-glibc.json")) == []


def test_renders_on_the_other_glibc(loader: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Night scenes (a black world: no environment texture) byte for byte, day scenes the same picture; at the smoke
    profile's 128 px and 16 spp, three images per scenario."""
    monkeypatch.setenv("MIAD_PROBE_RENDER", "128,16,3")
    ours = run_probe([], "render", tmp_path / "native.json")
    theirs = run_probe(loader, "render", tmp_path / "other-glibc.json")
    night = tuple(key for key, info in SCENARIOS.items() if info.light == "night")
    assert len(night) == 2
    assert picture_problems(ours, theirs, "the other glibc", exact=night) == []
