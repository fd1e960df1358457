"""Real other CPUs: the asset library, a render of every scenario and a few training steps of every method, run
natively and under qemu-user with other CPU models (vendor, ISA, cache sizes), compared byte for byte.

qemu-user runs the whole process (NumPy, OpenCV, MKL, oneDNN, ATen, Blender) with another CPU's CPUID, so each
library takes the code path it would take on that CPU: what environment knobs cannot emulate (MKL's vendor branches,
oneDNN's blocking by cache size). Two models beside this machine's CPU: an Intel without AVX-512 (Haswell) and an
AMD without it (EPYC-Milan).

One allowance, for renders only: the ray traversal of Cycles and Embree refines the CPU's approximate reciprocal
(`rcpps`), which qemu computes exactly and whose bits differ between Intel's and AMD's silicon too. A ray that grazes
an edge can then hit on one CPU and miss on the other: a few isolated pixels. Masks must be identical, and images
identical or "other bits, same picture" (tests/other_platforms.py: at most a few pixels changed, PSNR >= 40 dB).
The asset library is generated without the numeric pin: it promises CPU-independent arithmetic whatever the
dispatch (tests/test_assets.py); methods and renders run pinned, as every `miad` command does.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.other_platforms import differing_digests, picture_problems, run_probe

pytestmark = pytest.mark.slow

CPU_MODELS = ("Haswell", "EPYC-Milan")  # Intel, AVX2, no AVX-512; AMD, AVX2, no AVX-512; other caches than ours
PARTS = ("assets", "methods", "render")
MIN_QEMU = (8, 0)  # qemu-user 7.2 (Debian 12's) crashes in OpenCV's AVX2 colour conversion


def _qemu_problem() -> str | None:
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        return "qemu-user is not installed: run .ci/qemu-install as root"
    version = subprocess.run([qemu, "--version"], capture_output=True, text=True, check=False).stdout
    found = re.search(r"version (\d+)\.(\d+)", version)
    if found is None or tuple(map(int, found.groups())) < MIN_QEMU:
        return f"qemu-user {found.group(0) if found else '?'} is too old (needs >= 8.0): run .ci/qemu-install as root"
    return None


@pytest.fixture(scope="module")
def probes(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """{(cpu, part): digests.json} for this CPU ("native") and every qemu model; two processes at a time."""
    problem = _qemu_problem()
    if problem:
        pytest.skip(problem)
    root = tmp_path_factory.mktemp("cross_cpu")
    jobs = [(cpu, part) for cpu in ("native", *CPU_MODELS) for part in PARTS]
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            (cpu, part): pool.submit(
                run_probe, [] if cpu == "native" else ["qemu-x86_64", "-cpu", cpu], part, root / f"{cpu}-{part}.json"
            )
            for cpu, part in jobs
        }
        return {job: future.result() for job, future in futures.items()}


@pytest.mark.parametrize("cpu", CPU_MODELS)
@pytest.mark.parametrize("part", ["assets", "methods"])
def test_same_bits_on_other_cpus(probes: dict[tuple[str, str], Path], part: str, cpu: str) -> None:
    assert len(probes[("native", part)].read_text().splitlines()) >= (72 if part == "assets" else 12)
    assert differing_digests(probes[("native", part)], probes[(cpu, part)]) == []


@pytest.mark.parametrize("cpu", CPU_MODELS)
def test_renders_on_other_cpus_are_the_same_picture(probes: dict[tuple[str, str], Path], cpu: str) -> None:
    assert picture_problems(probes[("native", "render")], probes[(cpu, "render")], cpu) == []
