"""Benchmark `miad.metrics.aupro` against the plain MVTec AD algorithm (speed, peak memory, agreement).

The plain algorithm (`plain_pro_curve` / `plain_aupro`, also the reference of tests/test_metrics.py) flattens every
pixel, sorts them all once by descending score, accumulates per-pixel FPR and PRO increments with cumulative sums,
keeps the last index of each run of equal scores (one point per distinct threshold), prepends the origin, and
integrates up to the FPR limit with linear interpolation there, divided by the limit: MVTec AD's `compute_pro`.

Each implementation runs in a fresh 'spawn' subprocess that loads the inputs from .npy files; peak memory is the
growth of that process's ru_maxrss from just after the inputs are loaded to the end of the call.

    .venv/bin/python benchmarks/bench_metrics.py --out results/bench/metrics.json --n 1000 --size 256
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage

_SRC = Path(__file__).resolve().parents[1] / "src"


# ----------------------------------------------------------------------------------------- reference algorithm
def plain_pro_curve(anomaly_maps: ArrayLike, masks: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """PRO curve (fpr, pro) by one global descending sort and cumulative sums: origin plus one point per distinct
    score. Regions are the 8-connected components of each image's mask."""
    maps = np.asarray(anomaly_maps)
    positive = np.asarray(masks) > 0
    region_size = np.zeros(maps.shape, dtype=np.float64)  # size of the pixel's region, 0 for normal pixels
    n_regions = 0
    for i in range(maps.shape[0]):
        labels, count = ndimage.label(positive[i], structure=np.ones((3, 3), dtype=bool))
        sizes = np.bincount(labels.ravel())
        region_size[i][labels > 0] = sizes[labels[labels > 0]]
        n_regions += count
    n_normal = np.count_nonzero(~positive)
    order = np.argsort(maps.ravel(), kind="stable")[::-1]
    scores = maps.ravel()[order]
    sizes_sorted = region_size.ravel()[order]
    fpr_inc = np.where(sizes_sorted == 0, 1.0 / n_normal, 0.0)
    with np.errstate(divide="ignore"):
        pro_inc = np.where(sizes_sorted > 0, 1.0 / (n_regions * sizes_sorted), 0.0)
    last_of_run = np.r_[np.flatnonzero(scores[1:] != scores[:-1]), scores.size - 1]
    fpr = np.r_[0.0, np.cumsum(fpr_inc)[last_of_run]]
    pro = np.r_[0.0, np.cumsum(pro_inc)[last_of_run]]
    return fpr, pro


def integrate_to_limit(fpr: np.ndarray, pro: np.ndarray, fpr_limit: float) -> float:
    """Trapezoid of pro over fpr (non-decreasing) from 0 to fpr_limit, interpolating pro linearly at the limit
    (between the last point at or below it and the first above it), divided by fpr_limit."""
    n_in = int(np.searchsorted(fpr, fpr_limit, side="right"))  # points with fpr <= limit
    x, y = fpr[:n_in], pro[:n_in]
    if n_in < fpr.size and x[-1] < fpr_limit:
        x0, x1, y0, y1 = fpr[n_in - 1], fpr[n_in], pro[n_in - 1], pro[n_in]
        x = np.r_[x, fpr_limit]
        y = np.r_[y, y0 + (y1 - y0) * (fpr_limit - x0) / (x1 - x0)]
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1])) / 2.0 / fpr_limit)


def plain_aupro(anomaly_maps: ArrayLike, masks: ArrayLike, fpr_limit: float = 0.3) -> float:
    """AUPRO by the plain MVTec AD algorithm (the reference for `miad.metrics.aupro`)."""
    fpr, pro = plain_pro_curve(anomaly_maps, masks)
    return integrate_to_limit(fpr, pro, fpr_limit)


# --------------------------------------------------------------------------------------------- synthetic data
def make_case(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic (maps float32, masks uint8) of shape (n, size, size): smooth noise plus fine noise, and on
    every other image 1-3 elliptic blobs (about 2% of its pixels, so ~1% overall) where the map is raised."""
    rng = np.random.default_rng(seed)
    maps = np.empty((n, size, size), dtype=np.float32)
    masks = np.zeros((n, size, size), dtype=np.uint8)
    cell = max(1, size // 16)
    coarse_side = -(-size // cell) + 1
    yy, xx = np.mgrid[0:size, 0:size]
    for i in range(n):
        coarse = rng.normal(size=(coarse_side, coarse_side))
        smooth = ndimage.zoom(coarse, size / coarse_side, order=1)[:size, :size]
        maps[i] = smooth + 0.5 * rng.normal(size=(size, size))
        if i % 2 == 1:
            n_blobs = int(rng.integers(1, 4))
            for _ in range(n_blobs):
                ry, rx = rng.uniform(0.3, 1.0, size=2) * size * np.sqrt(0.02 / (np.pi * n_blobs)) * 1.6
                cy, cx = rng.uniform(0, size, size=2)
                blob = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
                masks[i][blob] = 1
                maps[i][blob] += rng.uniform(0.5, 2.5)
    return maps, masks


# ------------------------------------------------------------------------------------------------ measurement
def _worker(which: str, data_dir: str, fpr_limit: float, repeats: int, queue: Any) -> None:
    """Load the inputs, then time `repeats` calls of one implementation; report value, best time, peak growth."""
    if str(_SRC) not in sys.path:
        sys.path.insert(0, str(_SRC))
    from miad.metrics import aupro

    maps = np.load(os.path.join(data_dir, "maps.npy"))
    masks = np.load(os.path.join(data_dir, "masks.npy"))
    func = aupro if which == "fast" else plain_aupro
    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    best, value = float("inf"), float("nan")
    for _ in range(repeats):
        start = time.perf_counter()
        value = func(maps, masks, fpr_limit)
        best = min(best, time.perf_counter() - start)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put({"value": value, "seconds": best, "peak_mb": (peak_kb - baseline_kb) / 1024.0})


def _measure(which: str, data_dir: str, fpr_limit: float, repeats: int) -> dict[str, float]:
    """Run `_worker` in a fresh spawned process and return its report."""
    from fresh_process import in_fresh_process  # benchmarks/ is the script's folder; tests import only the rest

    return in_fresh_process(_worker, which, data_dir, fpr_limit, repeats)


def _write_json_atomic(path: Path, payload: dict) -> None:
    """Write JSON to a temporary file in the target directory, then rename it over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the result the usual permissions
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=2)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Time miad.metrics.aupro against the plain MVTec AD algorithm (one global sort) on a "
        "deterministic synthetic set of N float32 maps of size x size (~1% anomalous pixels, half the images "
        "defect-free). Each implementation runs in a fresh spawned process; peak memory is that process's "
        "ru_maxrss growth after the inputs are loaded. Writes {n, size, fast_seconds, plain_seconds, speedup, "
        "fast_peak_mb, plain_peak_mb, abs_diff, value, ...} as JSON."
    )
    parser.add_argument("--out", type=Path, required=True, help="output JSON path (parent dirs are created)")
    parser.add_argument("--n", type=int, default=1000, help="number of maps (default 1000)")
    parser.add_argument("--size", type=int, default=256, help="map side in pixels (default 256)")
    parser.add_argument("--fpr-limit", type=float, default=0.3, help="AUPRO FPR limit (default 0.3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data (default 0)")
    args = parser.parse_args(argv)
    if args.n < 2 or args.size < 8:
        parser.error("--n must be >= 2 and --size >= 8 (the case needs good and defective images)")
    if not 0.0 < args.fpr_limit <= 1.0:
        parser.error("--fpr-limit must be in (0, 1]")

    maps, masks = make_case(args.n, args.size, args.seed)
    anomalous_fraction = float(np.count_nonzero(masks)) / masks.size
    with tempfile.TemporaryDirectory(prefix="bench_metrics_") as data_dir:
        np.save(os.path.join(data_dir, "maps.npy"), maps)
        np.save(os.path.join(data_dir, "masks.npy"), masks)
        del maps, masks
        fast = _measure("fast", data_dir, args.fpr_limit, repeats=2)
        plain = _measure("plain", data_dir, args.fpr_limit, repeats=1)

    result = {
        "n": args.n,
        "size": args.size,
        "fpr_limit": args.fpr_limit,
        "anomalous_pixel_fraction": anomalous_fraction,
        "fast_seconds": fast["seconds"],
        "plain_seconds": plain["seconds"],
        "speedup": plain["seconds"] / fast["seconds"],
        "fast_peak_mb": fast["peak_mb"],
        "plain_peak_mb": plain["peak_mb"],
        "abs_diff": abs(fast["value"] - plain["value"]),
        "value": fast["value"],
        "plain_value": plain["value"],
        "timing": "fast: best of 2 calls; plain: 1 call; each in its own spawned process",
        "memory_method": "ru_maxrss growth (MiB) of a fresh 'spawn' subprocess, from after np.load of the inputs "
        "to after the calls (includes validation and labelling)",
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
    }
    _write_json_atomic(args.out, result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
