"""Train and evaluate one method on rendered shards, twice, and say whether the two runs agree bit for bit."""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from miad.data.dataset import ShardDataset
from miad.data.layout import split_dir
from miad.hashing import bytes_sha256, tree_sha256


@dataclass(frozen=True)
class TrainRun:
    """One training + evaluation run."""

    checkpoint_sha256: str
    maps_sha256: str
    image_auroc: float
    train_seconds: float
    train_images_per_second: float
    predict_images_per_second: float
    peak_device_mb: float
    peak_host_mb: float


def train_and_evaluate(method: str, config: Any, renders: Path, scenario: str, out: Path, device: str) -> TrainRun:
    """Fit `method` on `scenario`'s train split, save it under `out`, predict its test split; time and measure."""
    import torch

    from miad import metrics
    from miad.methods import create_method
    from miad.stages.evaluate import predict_split

    train = ShardDataset(split_dir(renders, "main", scenario, "train"))
    test = ShardDataset(split_dir(renders, "main", scenario, "test"))
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    model = create_method(method, config, seed=0, device=device)
    start = time.perf_counter()
    model.fit(train.images)
    train_seconds = time.perf_counter() - start
    model.save(out)
    start = time.perf_counter()
    scores, maps, _ = predict_split(model, test, config.batch_size)
    predict_seconds = time.perf_counter() - start
    epochs = getattr(config, "epochs", 1)
    peak_device = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else 0.0
    run = TrainRun(
        checkpoint_sha256=tree_sha256(out, "*.safetensors"),
        maps_sha256=bytes_sha256(np.ascontiguousarray(maps).tobytes()),
        image_auroc=metrics.image_auroc(scores, test.labels),
        train_seconds=train_seconds,
        train_images_per_second=len(train) * epochs / train_seconds,
        predict_images_per_second=len(test) / predict_seconds,
        peak_device_mb=peak_device,
        peak_host_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
    train.close()
    test.close()
    return run


def deterministic(first: TrainRun, second: TrainRun) -> dict[str, bool]:
    """Whether two runs of the same params gave the same checkpoint bytes and the same anomaly maps."""
    return {
        "checkpoint_identical": first.checkpoint_sha256 == second.checkpoint_sha256,
        "maps_identical": first.maps_sha256 == second.maps_sha256,
    }
