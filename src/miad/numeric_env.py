"""The numeric environment of a pipeline process: pinned in one place, recorded beside every output.

x86-64 CPUs differ (AVX-512 or not, Intel or AMD), and NumPy, OpenCV, OpenBLAS, MKL, oneDNN and ATen each pick
their code per CPU at load time: float32 `**`/exp/log through SVML or libm, resizes through IPP, reductions 8 or
16 lanes wide, MKL's GEMM and vector maths by vendor. `pin` caps every one of them at AVX2 (x86-64-v3) and fixes
the thread counts from params, so that a process computes the same bits on every such CPU. It must run before
those libraries load: `miad`'s entry point calls it first thing, and the variables it sets are inherited by every
child process.

MKL needs two things beyond the cap (measured with MKL_VERBOSE and under qemu-user's Intel and AMD CPU models):
- Its conditional numerical reproducibility (CNR) branch must be `COMPATIBLE`: that is the only branch MKL
  accepts on a non-Intel CPU. `MKL_CBWR=AVX2` is silently ignored on AMD (MKL reports `CNR:AUTO` and picks its
  own code), while an Intel CPU honours it, so sgemm, exp, log and erf gave other bits on Intel than on AMD.
- Its thread count must not change at run time: `MKL_DYNAMIC` (on by default) lets MKL use fewer threads than
  asked, and CNR holds only for a constant count; `OMP_DYNAMIC` likewise for the OpenMP teams of ATen and oneDNN.
Even on the COMPATIBLE branch, MKL's vector sqrt, acos, asin and atan (which `torch.sqrt` etc. call on CPU) use
the CPU's approximate reciprocal instructions, whose bits differ by vendor: the methods avoid them
(`miad.methods.portable`: NumPy's sqrt, fused Adam).

A knob that the environment already sets *lower* than the cap is kept (that is how a test emulates an older
CPU on this one); one set higher is lowered. `describe` reports what the loaded libraries actually use; it is
written beside each output as a `provenance.json` sidecar, which .dvcignore and .gitignore exclude, so two
runs that differ can be told apart while the outputs DVC hashes stay byte-identical across machines.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

UNPINNED_ENV = "MIAD_UNPINNED"  # "1": leave every library at its native dispatch (benchmarks only)
IMAGE_ENV = "MIAD_IMAGE"  # the container image's ID, set by miad.runtime when a stage runs in one
THREADS_ENV = "MIAD_THREADS"  # the pinned thread count, for `apply_thread_count` once torch has loaded
LIBRARIES = ("numpy", "cv2", "torch", "bpy")
PROVENANCE_NAME = "provenance.json"  # sidecar in an output folder; `<file>.provenance.json` beside a file
# NumPy 1.26's dispatch targets above AVX2 (disabling one the CPU lacks is a silent no-op)
NUMPY_ABOVE_AVX2 = (
    "AVX512F",
    "AVX512CD",
    "AVX512_KNL",
    "AVX512_KNM",
    "AVX512_SKX",
    "AVX512_CLX",
    "AVX512_CNL",
    "AVX512_ICL",
)
# Each knob's levels, lowest first; the cap is the last level. A value outside the list is replaced.
LEVELS = {
    "ATEN_CPU_CAPABILITY": ("default", "avx2"),  # ATen's vectorised kernels (Sleef, reduction width)
    "ONEDNN_MAX_CPU_ISA": ("SSE41", "AVX", "AVX2"),  # oneDNN's JIT convolutions and matmuls
    "MKL_CBWR": ("COMPATIBLE",),  # MKL's CNR branch: the one branch every x86 vendor runs (see above)
}
FIXED = {  # knobs with one right value, whatever the environment says
    "MKL_DYNAMIC": "FALSE",  # MKL may not lower its thread count at run time (CNR holds for a fixed count)
    "OMP_DYNAMIC": "FALSE",  # nor may OpenMP shrink a team (ATen's and oneDNN's parallel regions)
}
_PIN_STATE: dict[str, list[str]] = {}  # which numeric libraries were loaded before `pin` ran
KNOBS = (
    "NPY_DISABLE_CPU_FEATURES",
    "OPENCV_IPP",
    "OPENCV_CPU_DISABLE",
    "OPENCV_LOG_LEVEL",
    "OPENBLAS_CORETYPE",
    *LEVELS,
    *FIXED,
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "OPENCV_FOR_THREADS_NUM",
    THREADS_ENV,
    UNPINNED_ENV,
)


def pinned_values(threads: int, environ: Mapping[str, str], *, avx512: bool = True) -> dict[str, str]:
    """The knob values `pin` sets, given the environment it starts from and whether the CPU has AVX-512
    (OpenCV warns in every process when told to disable a feature the CPU lacks). Pure: tests call it."""
    thread_knobs = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENCV_FOR_THREADS_NUM", THREADS_ENV)
    values = {name: str(threads) for name in thread_knobs}
    disabled = environ.get("NPY_DISABLE_CPU_FEATURES", "").replace(",", " ").split()
    values["NPY_DISABLE_CPU_FEATURES"] = " ".join(dict.fromkeys([*disabled, *NUMPY_ABOVE_AVX2]))
    values["OPENCV_IPP"] = "disabled"  # IPP picks its own code per CPU
    cv_disabled = [f for f in environ.get("OPENCV_CPU_DISABLE", "").replace(" ", ",").split(",") if f]
    cv_disabled += ["AVX512-SKX"] if avx512 else []
    if cv_disabled:
        values["OPENCV_CPU_DISABLE"] = ",".join(dict.fromkeys(cv_disabled))
    values["OPENCV_LOG_LEVEL"] = environ.get("OPENCV_LOG_LEVEL", "ERROR")  # else every process warns of IPP
    values["OPENBLAS_CORETYPE"] = environ.get("OPENBLAS_CORETYPE", "Haswell")  # kept where the machine sets it
    for name, levels in LEVELS.items():
        current = environ.get(name, "")
        values[name] = current if current in levels else levels[-1]
    values.update(FIXED)
    return values


def pin(threads: int) -> dict[str, str]:
    """Set the knobs in os.environ (for this process and its children); return what was set.

    Libraries already loaded cannot change their dispatch any more: their thread counts are set at run
    time, and `describe` reports the dispatch they really use.
    """
    if os.environ.get(UNPINNED_ENV) == "1":
        return {}
    _PIN_STATE["loaded_before_pin"] = [name for name in LIBRARIES if name in sys.modules]
    flags = cpu_flags()
    values = pinned_values(threads, os.environ, avx512=not flags or "avx512f" in flags)  # unknown: assume it has
    os.environ.update(values)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    if "cv2" in sys.modules:
        sys.modules["cv2"].setNumThreads(threads)
        sys.modules["cv2"].ipp.setUseIPP(False)
    return values


def apply_thread_count() -> None:
    """Give torch the pinned thread count explicitly: it caps OMP_NUM_THREADS at the cores it sees, and trained
    bits depend on the count, so a 1-core machine must still run the 2 threads params ask for. Called where
    methods are built (miad.methods.base), once torch has loaded."""
    threads = os.environ.get(THREADS_ENV)
    if threads and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(threads))


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo; platform.processor() elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def libc_version() -> str:
    """The C library this process runs on, e.g. "glibc 2.36" (its libm differs between releases)."""
    name, version = platform.libc_ver()
    return f"{name} {version}".strip() or "unknown"


def cpu_flags() -> list[str]:
    """The SIMD flags of the CPU that matter to dispatch (avx2, fma, avx512*)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return []
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = line.split(":", 1)[1].split()
            return sorted(f for f in flags if f in ("avx2", "fma") or f.startswith("avx512"))
    return []


def describe(**extra: Any) -> dict[str, Any]:
    """What made an output: library versions and the dispatch they use, knobs, CPU, threads (+ `extra`)."""
    from importlib.metadata import version

    libraries: dict[str, Any] = {"miad": version("miad"), "python": platform.python_version()}
    if "numpy" in sys.modules:
        numpy = sys.modules["numpy"]
        from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__

        libraries["numpy"] = {
            "version": numpy.__version__,
            "dispatch": [f for f in __cpu_dispatch__ if __cpu_features__.get(f)],
        }
    if "cv2" in sys.modules:
        cv2 = sys.modules["cv2"]
        libraries["opencv"] = {
            "version": cv2.__version__,
            "ipp": bool(cv2.ipp.useIPP()),
            "features": cv2.getCPUFeaturesLine(),
            "threads": cv2.getNumThreads(),
        }
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        libraries["torch"] = {
            "version": torch.__version__,
            "aten_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads(),
            "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_initialized() else None,
        }
    if "bpy" in sys.modules:
        bpy = sys.modules["bpy"]
        scene = getattr(bpy.context, "scene", None)
        libraries["blender"] = {
            "version": bpy.app.version_string,
            "cycles_threads": scene.render.threads if scene is not None else None,  # results do not depend on it
        }
    return {
        "cpu": {"model": cpu_model(), "flags": cpu_flags(), "cores": os.cpu_count(), "machine": platform.machine()},
        "libc": libc_version(),  # Blender's float maths (atan2f, acosf, ...) come from it
        "libraries": libraries,
        "knobs": {name: os.environ[name] for name in KNOBS if name in os.environ},
        "pinned": "loaded_before_pin" in _PIN_STATE,
        "loaded_before_pin": _PIN_STATE.get("loaded_before_pin", []),  # their dispatch was not capped
        **({"image": os.environ[IMAGE_ENV]} if os.environ.get(IMAGE_ENV) else {}),  # the container that ran it
        **extra,
    }


def sidecar_path(output: Path) -> Path:
    """Where the provenance of `output` goes: inside a folder, beside a file."""
    output = Path(output)
    return output / PROVENANCE_NAME if output.is_dir() else output.with_name(f"{output.name}.{PROVENANCE_NAME}")


def write_provenance(output: Path, *, append: bool = False, **extra: Any) -> Path:
    """Write `{"runs": [describe(**extra)]}` as the provenance sidecar of `output` (after the runs already
    recorded there when `append`: a dataset whose shards several processes rendered); return its path."""
    from miad.atomic import write_json_atomic

    path = sidecar_path(output)
    runs = []
    if append and path.is_file():
        try:
            runs = list(json.loads(path.read_text(encoding="utf-8"))["runs"])
        except (ValueError, KeyError, TypeError):
            runs = []  # an unreadable sidecar is only provenance: start it again rather than fail the stage
    runs.append(describe(**extra))
    write_json_atomic(path, {"runs": runs})
    return path


def environment_line(run: dict[str, Any]) -> str:
    """One line naming what matters for the bits: CPU, dispatch levels, threads, library versions."""
    libraries = run.get("libraries", {})
    parts = [run.get("cpu", {}).get("model", "?")]
    parts.append("pinned" if run.get("pinned") else "NOT pinned")
    if run.get("libc"):
        parts.append(run["libc"])
    if "numpy" in libraries:
        dispatch = libraries["numpy"]["dispatch"]
        parts.append(f"numpy {libraries['numpy']['version']} up to {dispatch[-1] if dispatch else 'baseline'}")
    if "torch" in libraries:
        torch = libraries["torch"]
        parts.append(f"torch {torch['version']} {torch['aten_capability']} x{torch['threads']} threads")
        if torch.get("cuda_device"):
            parts.append(torch["cuda_device"])
    if "blender" in libraries:
        parts.append(f"Blender {libraries['blender']['version']} x{libraries['blender']['cycles_threads']} threads")
    return ", ".join(parts)


def provenance_summary(root: Path) -> dict[str, int]:
    """{environment line: outputs made} over every provenance sidecar under `root`."""
    counts: dict[str, int] = {}
    for path in sorted(Path(root).rglob(f"*{PROVENANCE_NAME}")):
        try:
            runs = json.loads(path.read_text(encoding="utf-8"))["runs"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # provenance is informative only
        for run in runs:
            line = environment_line(run)
            counts[line] = counts.get(line, 0) + 1
    return counts
