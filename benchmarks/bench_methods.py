"""Per-method speed at smoke size: training images/s, inference images/s and peak memory.

Each method runs in a fresh process (spawn) with its config from params.yaml's chosen profile, on
synthetic 128x128 images, so peak resident memory is its own. Training images/s counts every image
the optimiser saw (images x epochs); PatchCore's single pass counts once. Writes one JSON file.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from miad.atomic import write_json_atomic  # noqa: E402


def _images(n: int, size: int, seed: int) -> list:
    import numpy as np

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 200, (size, size, 3), dtype=np.uint8)
    return [np.clip(base.astype(np.int16) + rng.integers(-8, 9, base.shape), 0, 255).astype(np.uint8) for _ in range(n)]


def _measure(method: str, params_path: str, profile: str, n_train: int, n_test: int, size: int, queue) -> None:
    from miad.config import load_params
    from miad.methods import create_method

    params = load_params(params_path, profile=profile)
    config = getattr(params.active.train, method)
    train, test = _images(n_train, size, 1), _images(n_test, size, 2)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model = create_method(method, config, seed=0)
    start = time.perf_counter()
    model.fit(train)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    model.predict(test)
    predict_seconds = time.perf_counter() - start
    epochs = getattr(config, "epochs", 1)
    queue.put(
        {
            "method": method,
            "train_images": n_train,
            "epochs": epochs,
            "fit_seconds": fit_seconds,
            "train_images_per_second": n_train * epochs / fit_seconds,
            "test_images": n_test,
            "predict_seconds": predict_seconds,
            "inference_images_per_second": n_test / predict_seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_rss_growth_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss) / 1024,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="results/bench/methods.json", help="JSON file to write")
    parser.add_argument("--params", default=str(REPO / "params.yaml"))
    parser.add_argument("--profile", default="smoke", choices=["smoke", "paper"])
    parser.add_argument("--methods", nargs="*", help="methods to time (default: all registered)")
    parser.add_argument("--train-images", type=int, default=40)
    parser.add_argument("--test-images", type=int, default=40)
    parser.add_argument("--size", type=int, default=128, help="image side, px")
    args = parser.parse_args()
    from miad.methods import METHODS

    context = mp.get_context("spawn")
    results = []
    for method in args.methods or sorted(METHODS):
        queue = context.Queue()
        proc = context.Process(
            target=_measure,
            args=(method, args.params, args.profile, args.train_images, args.test_images, args.size, queue),
        )
        proc.start()
        result = queue.get()
        proc.join()
        print(json.dumps(result), flush=True)
        results.append(result)
    write_json_atomic(Path(args.out), {"profile": args.profile, "size": args.size, "methods": results})


if __name__ == "__main__":
    main()
