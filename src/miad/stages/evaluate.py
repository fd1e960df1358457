"""Evaluate a trained method on a test split: anomaly maps -> image score = max of map -> metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from miad import metrics
from miad.atomic import write_json_atomic
from miad.config import Params
from miad.data.dataset import ShardDataset
from miad.data.layout import split_dir


def predict_split(model: Any, dataset: ShardDataset, batch_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image scores (N,), anomaly maps (N, H, W) float32, masks (N, H, W) bool) over a whole split."""
    scores, maps, masks = [], [], []
    for start in tqdm(range(0, len(dataset), batch_size), desc="predict", unit="batch", leave=False):
        batch = dataset[start : start + batch_size]
        prediction = model.predict(np.stack([s.image for s in batch]))
        scores.append(prediction.image_scores)
        maps.append(prediction.anomaly_maps.astype(np.float32))
        masks.append(np.stack([s.mask > 0 for s in batch]))
    return np.concatenate(scores), np.concatenate(maps), np.concatenate(masks)


def compute_metrics(params: Params, scores: np.ndarray, labels: np.ndarray, maps: np.ndarray,
                    masks: np.ndarray) -> dict[str, float]:
    cfg = params.active.evaluate
    return {
        "image_auroc": metrics.image_auroc(scores, labels),
        "recall_at_fpr": metrics.recall_at_fpr(scores, labels, max_fpr=cfg.recall_max_fpr),
        "aupro": metrics.aupro(maps, masks, fpr_limit=cfg.aupro_fpr_limit),
        "pixel_auroc": metrics.pixel_auroc(maps, masks),
    }


def evaluate(params: Params, method: str, variant: str, scenario: str, renders: Path, model_dir: Path,
             out: Path) -> dict[str, Any]:
    """Score the test split with the model in `model_dir`; write metrics and per-image scores to `out`."""
    from miad.methods import get_method

    model = get_method(method).load(model_dir, device=params.active.train.device)
    dataset = ShardDataset(split_dir(renders, variant, scenario, "test"))
    scores, maps, masks = predict_split(model, dataset, params.active.evaluate.batch_size)
    labels = dataset.labels
    result = {
        "method": method, "variant": variant, "scenario": scenario, "profile": params.profile,
        "metrics": compute_metrics(params, scores, labels, maps, masks),
        "images": [{"stem": e.stem, "label": e.label, "defect_type": e.defect_type, "score": float(s)}
                   for e, s in zip(dataset.entries, scores, strict=True)],
    }
    dataset.close()
    write_json_atomic(out, result)
    return result
