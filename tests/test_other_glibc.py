"""Another C library: the methods and a render of every scenario under the other Debian release's glibc (2.41 on
Debian 12, 2.36 on Debian 13), through that glibc's own dynamic loader, against this machine's run.

Why: glibc 2.41 made atan2f, acosf, tanf and a dozen other float functions correctly rounded, so their bits changed.
Blender called atan2f to decompose every camera and lamp matrix into Euler angles, which moved whole images on
Debian 13; poses are now computed in double precision (miad.render.pose) and the training code calls none of them,
so the methods must give the same bits. One layer stays: Cycles' environment texture (the day sky) looks up each ray
with the C library's atan2f and acosf, so a few pixels of day scenes may differ: same-picture rule as for other CPUs.
.ci/other-glibc unpacks that C library into /opt/miad-ci/other-glibc (or set MIAD_OTHER_GLIBC).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

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
    libc = subprocess.run(
        [*prefix, sys.executable, "-c", "import platform; print(platform.libc_ver()[1])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert libc and libc != platform.libc_ver()[1], f"{GLIBC_DIR} holds this machine's own glibc {libc}"
    return prefix


@pytest.mark.parametrize("part", ["methods", "render"])
def test_other_glibc(loader: list[str], part: str, tmp_path: Path) -> None:
    ours = run_probe([], part, tmp_path / "native.json")
    theirs = run_probe(loader, part, tmp_path / "other-glibc.json")
    if part == "methods":
        assert differing_digests(ours, theirs) == []
    else:
        assert picture_problems(ours, theirs, "the other glibc") == []
