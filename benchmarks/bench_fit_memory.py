"""Peak resident memory of `fit` against the training-set size: streaming fit keeps it flat in N.

Each (method, N) runs in a fresh process (spawn) with the smoke profile's config at epochs=1, on N
synthetic 128x128 images that a lazy sequence makes on access (as a ShardDataset decodes on access),
so nothing but the method can hold them. Before `fit` the process's peak RSS is reset
(/proc/self/clear_refs), so `fit_peak_mb` is fit's own peak above the RSS it started from (backbone
and network already built). `state_mb` is what `save` writes (the model's own state: PatchCore's
bank grows with N by design); `beyond_state_mb` = fit_peak_mb - state_mb is what must stay flat.

Two modes: `default` (the shipped code: frozen-backbone features and resized images are cached while
they fit in each method's budget, 1-2 GiB, so RSS grows with N up to that budget and then stays flat)
and `streaming` (the budgets set to 0: every epoch reads and decodes its batches again, the path every
method takes at paper scale). PatchCore's coreset ratio is lowered to 0.01 here to keep the greedy
selection (quadratic in N) to seconds; its streaming mode is the two-pass bank (EXACT_BANK_BYTES=0).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from fresh_process import in_fresh_process  # noqa: E402
from miad.atomic import write_json_atomic  # noqa: E402

BENCH_CORESET_RATIO = 0.01
CACHE_BUDGETS = {  # module -> the constants that bound what a method caches between epochs
    "miad.methods.fastflow": ("FEATURE_CACHE_BYTES",),
    "miad.methods.reverse_distillation": ("FEATURE_CACHE_BYTES",),
    "miad.methods.uniad": ("FEATURE_CACHE_MAX_BYTES",),
    "miad.methods.autoencoder": ("RESIZED_CACHE_BYTES",),
    "miad.methods.patchcore": ("EXACT_BANK_BYTES",),
}


class SyntheticImages:
    """N images made on access from their index: a fixed texture plus per-image noise, (S, S, 3) uint8."""

    def __init__(self, n: int, size: int) -> None:
        import numpy as np

        self._n, self._size = n, size
        self._base = np.random.default_rng(0).integers(0, 200, (size, size, 3), dtype=np.uint8)

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i):  # type: ignore[no-untyped-def]
        import numpy as np

        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._n))]
        if not 0 <= i < self._n:
            raise IndexError(i)
        noise = np.random.default_rng([1, i]).integers(-8, 9, self._base.shape)
        return np.clip(self._base.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _measure(method: str, params_path: str, n: int, size: int, mode: str, anomaly_source: str, queue) -> None:
    import importlib

    from miad.config import load_params
    from miad.numeric_env import pin

    params = load_params(params_path, profile="smoke")
    pin(params.active.numeric.threads)
    from miad.methods import create_method

    if mode == "streaming":
        for module, names in CACHE_BUDGETS.items():
            for name in names:
                setattr(importlib.import_module(module), name, 0)
    config = replace(getattr(params.active.train, method), epochs=1) if method != "patchcore" else None
    if method == "patchcore":
        config = replace(params.active.train.patchcore, coreset_ratio=BENCH_CORESET_RATIO)
    if method == "draem":
        config = replace(config, anomaly_source=anomaly_source)
    model = create_method(method, config, seed=0)
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS (VmHWM) to the current RSS
    start_kb = _status_kb("VmRSS")
    start = time.perf_counter()
    model.fit(SyntheticImages(n, size))
    seconds = time.perf_counter() - start
    peak_kb = _status_kb("VmHWM")
    state_bytes = sum(t.numel() * t.element_size() for t in model._state_tensors().values())
    fit_peak = (peak_kb - start_kb) / 1024
    queue.put(
        {
            "method": method,
            "mode": mode,
            "n_images": n,
            "fit_seconds": round(seconds, 2),
            "fit_peak_mb": round(fit_peak, 1),
            "state_mb": round(state_bytes / 2**20, 1),
            "beyond_state_mb": round(fit_peak - state_bytes / 2**20, 1),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="results/bench/fit_memory.json", help="JSON file to write")
    parser.add_argument("--params", default=str(REPO / "params.yaml"))
    parser.add_argument("--methods", nargs="*", help="methods (default: all registered)")
    parser.add_argument("--sizes", nargs="*", type=int, default=[100, 400, 1600], help="training-set sizes N")
    parser.add_argument("--modes", nargs="*", default=["streaming", "default"], choices=["streaming", "default"])
    parser.add_argument("--size", type=int, default=128, help="image side, px")
    args = parser.parse_args()
    import tempfile

    from miad.method_catalog import TRAINABLE
    from miad.methods.draem_augment import write_demo_textures

    results = []
    with tempfile.TemporaryDirectory() as temp:
        textures = str(write_demo_textures(Path(temp)))
        for method in args.methods or sorted(TRAINABLE):
            for mode in args.modes:
                for n in args.sizes:
                    result = in_fresh_process(_measure, method, args.params, n, args.size, mode, textures)
                    print(json.dumps(result), flush=True)
                    results.append(result)
    summary = {"size": args.size, "epochs": 1, "patchcore_coreset_ratio": BENCH_CORESET_RATIO, "runs": results}
    write_json_atomic(Path(args.out), summary)


if __name__ == "__main__":
    main()
