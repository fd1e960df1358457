"""PatchCore's bank at scale: peak RSS and time against N, one-piece vs streamed bank, and the AUROC they give.

Memory/time (each run a fresh spawned process, peak RSS reset before `fit`): the paper's backbone
(wide_resnet50_2 layers 2+3, 1536 channels; randomly initialised weights, the architecture is what
costs memory) at 128 px with coreset ratio 0.01 (CPU time), N training images made on access.
Batches of 8 by default, so that the forward pass's activations do not hide the bank.
`exact` builds the float32 bank in one piece (what runs while it fits in EXACT_BANK_BYTES); `streamed`
forces the two-pass path (EXACT_BANK_BYTES=0) that keeps only the (N, k) projections. AUROC: the
smoke config (ImageNet Lite0) on synthetic normal images and images with a bright square, both paths.
`paper_scale` gives the computed (not measured) sizes at the paper's 10,000 images, 224 px
(`miad.plan.patchcore_bank`, which `miad plan` prices with); each run also records that module's computed bank
peak beside the measured one. `coreset_rate` times greedy k-center on a 1.5 GB projection matrix: the
projection entries it reads per second, the CPU figure `miad plan` (src/miad/plan/costs.yaml) uses.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_fit_memory import SyntheticImages, _status_kb  # noqa: E402
from fresh_process import in_fresh_process  # noqa: E402
from miad.atomic import write_json_atomic  # noqa: E402

CORESET_RATIO = 0.01
PAPER_BACKBONE, PAPER_LAYERS, PAPER_IMAGES, PAPER_SIZE, PAPER_RATIO = "wide_resnet50_2", (2, 3), 10_000, 224, 0.1
CORESET_RATE_ROWS, CORESET_RATE_DIM, CORESET_RATE_PICKS = 1_000_000, 384, 40  # 1.5 GB: beyond any CPU cache
AUROC_TOLERANCE = 0.005


def _anomalous(images: SyntheticImages, i: int):  # type: ignore[no-untyped-def]
    import numpy as np

    image = images[i].copy()
    rng = np.random.default_rng([2, i])
    y, x = rng.integers(8, image.shape[0] - 24, 2)
    image[y : y + 16, x : x + 16] = 255
    return image


def _measure(mode: str, n: int, size: int, batch_size: int, weights: str, queue) -> None:
    from miad.numeric_env import pin

    pin(2)
    from miad.config import PatchCoreConfig
    from miad.methods import create_method, patchcore
    from miad.plan.patchcore_bank import bank_sizes

    patchcore.EXACT_BANK_BYTES = 0 if mode == "streamed" else 2**62
    config = PatchCoreConfig(
        backbone="wide_resnet50_2",
        weights=weights,
        layers=(2, 3),
        image_size=size,
        coreset_ratio=CORESET_RATIO,
        batch_size=batch_size,
    )
    model = create_method("patchcore", config, seed=0)
    Path("/proc/self/clear_refs").write_text("5")
    start_kb = _status_kb("VmRSS")
    start = time.perf_counter()
    model.fit(SyntheticImages(n, size))
    seconds = time.perf_counter() - start
    peak = (_status_kb("VmHWM") - start_kb) / 1024
    state = sum(t.numel() * t.element_size() for t in model._state_tensors().values()) / 2**20
    n_patches, k = model.info["n_patches"], int(model.projection.shape[1])
    computed = bank_sizes(n, size, model.embedding_dim, size // model._patch_grid()[0], CORESET_RATIO)
    queue.put(
        {
            "mode": mode,
            "n_images": n,
            "n_patches": n_patches,
            "projected_dim": k,
            "fit_seconds": round(seconds, 2),
            "fit_peak_mb": round(peak, 1),
            "state_mb": round(state, 1),
            "beyond_state_mb": round(peak - state, 1),
            "whole_bank_mb": round(n_patches * model.embedding_dim * 4 / 2**20, 1),
            "projections_mb": round(n_patches * k * 4 / 2**20, 1),
            "computed_bank_peak_mb": round(computed.peak_bytes / 2**20, 1),  # miad.plan's figure, for comparison
        }
    )


def _auroc(mode: str, n_train: int, n_test: int, size: int, queue) -> None:
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from miad.numeric_env import pin

    pin(2)
    from miad.config import load_params
    from miad.methods import create_method, patchcore

    patchcore.EXACT_BANK_BYTES = 0 if mode == "streamed" else 2**62
    config = replace(load_params(REPO / "params.yaml", profile="smoke").active.train.patchcore, image_size=size)
    model = create_method("patchcore", config, seed=0)
    model.fit(SyntheticImages(n_train, size))
    normal = SyntheticImages(n_train + n_test, size)
    test = [normal[n_train + i] for i in range(n_test)] + [_anomalous(normal, n_train + i) for i in range(n_test)]
    scores = model.predict(np.stack(test)).image_scores
    labels = [0] * n_test + [1] * n_test
    queue.put({"mode": mode, "image_auroc": float(roc_auc_score(labels, scores)), "bank": model.memory_bank.numpy()})


def paper_scale() -> dict[str, float]:
    """Computed sizes of PatchCore's uncapped run at the paper's scale (Table 7's missing column)."""
    from miad.plan.patchcore_bank import bank_sizes, feature_geometry

    channels, stride = feature_geometry(PAPER_BACKBONE, PAPER_LAYERS)
    return bank_sizes(PAPER_IMAGES, PAPER_SIZE, channels, stride, PAPER_RATIO).as_dict()


def _coreset_rate(n_rows: int, k: int, picks: int, queue) -> None:
    """Greedy k-center's pace on this CPU: projection entries read per second (picks x rows x k / time)."""
    import torch

    from miad.methods.patchcore import greedy_coreset
    from miad.numeric_env import pin

    pin(2)
    generator = torch.Generator().manual_seed(0)
    projected = torch.randn(n_rows, k, generator=generator)
    greedy_coreset(projected, 2, generator)  # warm-up
    start = time.perf_counter()
    greedy_coreset(projected, picks, generator)
    seconds = time.perf_counter() - start
    queue.put(
        {
            "rows": n_rows,
            "projected_dim": k,
            "picks": picks,
            "seconds": round(seconds, 3),
            "elements_per_second": round(picks * n_rows * k / seconds),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="results/bench/patchcore_memory.json", help="JSON file to write")
    parser.add_argument("--sizes", nargs="*", type=int, default=[50, 100, 200], help="training-set sizes N")
    parser.add_argument("--size", type=int, default=128, help="image side, px")
    parser.add_argument("--batch-size", type=int, default=8, help="images per forward pass (the activations' peak)")
    args = parser.parse_args()
    from miad.rehearsal.weights import write_random_weights

    runs = []
    with tempfile.TemporaryDirectory() as temp:
        weights = str(write_random_weights("wide_resnet50_2", Path(temp) / "wide_resnet50_2.safetensors", 0))
        for mode in ("exact", "streamed"):
            for n in args.sizes:
                runs.append(in_fresh_process(_measure, mode, n, args.size, args.batch_size, weights))
                print(json.dumps(runs[-1]), flush=True)
    aurocs = {mode: in_fresh_process(_auroc, mode, 40, 20, args.size) for mode in ("exact", "streamed")}
    import numpy as np

    delta = abs(aurocs["exact"]["image_auroc"] - aurocs["streamed"]["image_auroc"])
    auroc = {
        "exact": aurocs["exact"]["image_auroc"],
        "streamed": aurocs["streamed"]["image_auroc"],
        "abs_difference": delta,
        "within_tolerance": delta <= AUROC_TOLERANCE,
        "banks_identical": bool(np.array_equal(aurocs["exact"]["bank"], aurocs["streamed"]["bank"])),
    }
    print(json.dumps(auroc), flush=True)
    summary = {"size": args.size, "batch_size": args.batch_size, "coreset_ratio": CORESET_RATIO, "runs": runs}
    summary["auroc"] = auroc
    summary["paper_scale"] = paper_scale()
    summary["coreset_rate"] = in_fresh_process(_coreset_rate, CORESET_RATE_ROWS, CORESET_RATE_DIM, CORESET_RATE_PICKS)
    print(json.dumps(summary["coreset_rate"]), flush=True)
    write_json_atomic(Path(args.out), summary)


if __name__ == "__main__":
    main()
