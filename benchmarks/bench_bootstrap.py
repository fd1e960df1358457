"""Benchmark the bootstrap intervals of one evaluation run (`miad.bootstrap`): time and peak memory at the smoke
size and at a paper-shaped size, beside the exact metrics on the same data in the same run, and how far the grids'
AUPRO and pixel AUROC lie from the exact ones.

Synthetic maps come from bench_metrics.make_case (smooth noise, blobs on every other image); scores are each
map's maximum, as in the pipeline. The paper profile tests 5000 images at 512 px per scenario; the largest case
here is a fraction of that (memory of the machine) and the per-image cost scales linearly in the images.

    .venv/bin/python benchmarks/bench_bootstrap.py --out results/bench/bootstrap.json
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_metrics import make_case
from miad import bootstrap, metrics


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(n_images: int, size: int, resamples: int) -> dict:
    """One split of `n_images` maps of `size` px: exact metrics, then every bootstrap replicate and interval."""
    maps, masks = make_case(n_images, size, seed=1)
    masks = masks > 0
    labels = masks.reshape(n_images, -1).any(axis=1).astype(np.int64)
    scores = maps.reshape(n_images, -1).max(axis=1).astype(np.float64)
    before = peak_mb()
    start = time.perf_counter()
    boot = bootstrap.Bootstrap.draw(labels, resamples, seed=0)
    auroc = bootstrap.auroc_replicates(scores, labels, boot)
    recall = bootstrap.recall_replicates(scores, labels, boot, 0.01)
    image_seconds = time.perf_counter() - start
    start = time.perf_counter()
    aupro, grid_value = bootstrap.aupro_replicates(maps, masks, boot, 0.3)
    aupro_seconds = time.perf_counter() - start
    start = time.perf_counter()
    pixel_auroc, pixel_grid_value = bootstrap.pixel_auroc_replicates(maps, masks, boot)
    pixel_auroc_seconds = time.perf_counter() - start
    growth = peak_mb() - before  # the bootstrap's own peak, measured before the exact metrics run
    start = time.perf_counter()
    exact = {
        "image_auroc": metrics.image_auroc(scores, labels),
        "recall_at_fpr": metrics.recall_at_fpr(scores, labels, 0.01),
        "aupro": metrics.aupro(maps, masks, 0.3),
        "pixel_auroc": metrics.pixel_auroc(maps, masks),
    }
    exact_seconds = time.perf_counter() - start
    return {
        "images": n_images,
        "size": size,
        "resamples": resamples,
        "exact_metrics_seconds": round(exact_seconds, 3),
        "bootstrap_image_metrics_seconds": round(image_seconds, 3),
        "bootstrap_aupro_seconds": round(aupro_seconds, 3),
        "bootstrap_pixel_auroc_seconds": round(pixel_auroc_seconds, 3),
        "bootstrap_over_exact": round((image_seconds + aupro_seconds + pixel_auroc_seconds) / exact_seconds, 2),
        "bootstrap_peak_rss_growth_mb": round(growth, 1),
        "intervals": {
            "image_auroc": bootstrap.interval(auroc),
            "recall_at_fpr": bootstrap.interval(recall),
            "aupro": bootstrap.interval(aupro),
            "pixel_auroc": bootstrap.interval(pixel_auroc),
        },
        "exact": exact,
        "grid_aupro_minus_exact": grid_value - exact["aupro"],
        "grid_pixel_auroc_minus_exact": pixel_grid_value - exact["pixel_auroc"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="results/bench/bootstrap.json")
    parser.add_argument(
        "--cases", default="40x128,1000x256,500x512", help="comma-separated IMAGESxSIZE (default: %(default)s)"
    )
    parser.add_argument("--resamples", type=int, default=2000)
    args = parser.parse_args()
    results = []
    for case in args.cases.split(","):
        n_images, size = (int(v) for v in case.split("x"))
        result = measure(n_images, size, args.resamples)
        print(json.dumps(result), flush=True)
        results.append(result)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"cases": results}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
