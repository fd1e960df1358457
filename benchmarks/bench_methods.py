"""Per-method speed at smoke size: training images/s, inference images/s and peak memory.

Each method runs in a fresh process (spawn) with its config from params.yaml's chosen profile, on
synthetic 128x128 images, so peak resident memory is its own. Training images/s counts every image
the optimiser saw (images x epochs); PatchCore's single pass counts once. Each method runs twice, once
with the numeric environment pinned as every pipeline process has it (miad.numeric_env: SIMD capped at
AVX2, fixed threads) and once at the libraries' native dispatch, so the JSON gives the speed cost of
portable bytes, measured in the same run. Writes one JSON file.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from fresh_process import in_fresh_process  # noqa: E402
from miad.atomic import write_json_atomic  # noqa: E402


def _images(n: int, size: int, seed: int) -> list:
    import numpy as np

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 200, (size, size, 3), dtype=np.uint8)
    return [np.clip(base.astype(np.int16) + rng.integers(-8, 9, base.shape), 0, 255).astype(np.uint8) for _ in range(n)]


def _measure(
    method: str, params_path: str, profile: str, n_train: int, n_test: int, size: int, pinned: bool, queue
) -> None:
    from miad.config import load_params

    params = load_params(params_path, profile=profile)
    if pinned:  # before numpy and torch load, as `miad` does
        from miad.numeric_env import pin

        pin(params.active.numeric.threads)
    from miad.methods import create_method

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
    import torch

    queue.put(
        {
            "method": method,
            "dispatch": "pinned" if pinned else "native",
            "aten_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads(),
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
    parser.add_argument(
        "--dispatch", choices=["both", "pinned", "native"], default="both", help="numeric environment(s) to time"
    )
    args = parser.parse_args()
    from miad.method_catalog import TRAINABLE

    results, ratios = [], {}
    modes = {"both": (True, False), "pinned": (True,), "native": (False,)}[args.dispatch]
    for method in args.methods or sorted(TRAINABLE):
        timed = {}
        for pinned in modes:
            result = in_fresh_process(
                _measure, method, args.params, args.profile, args.train_images, args.test_images, args.size, pinned
            )
            print(json.dumps(result), flush=True)
            results.append(result)
            timed[result["dispatch"]] = result
        if len(timed) == 2:  # the speed cost of portable bytes: native rate / pinned rate, same run
            ratios[method] = {
                f"{phase}_native_over_pinned": timed["native"][f"{phase}_images_per_second"]
                / timed["pinned"][f"{phase}_images_per_second"]
                for phase in ("train", "inference")
            }
    summary = {"profile": args.profile, "size": args.size, "methods": results, "native_over_pinned": ratios}
    write_json_atomic(Path(args.out), summary)


if __name__ == "__main__":
    main()
