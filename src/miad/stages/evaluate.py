"""Evaluate a trained method on a test split: anomaly maps -> image score = max of map -> metrics, each with
its bootstrap interval over test images (miad.bootstrap)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from miad import bootstrap, metrics
from miad.atomic import write_bytes_atomic, write_json_atomic, write_text_atomic
from miad.catalog import PLAN_VARIANT
from miad.config import Params
from miad.data.dataset import ShardDataset
from miad.data.layout import split_dir
from miad.data.shards import IndexEntry
from miad.hashing import bytes_sha256
from miad.seeding import derive_seed


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


def compute_metrics(
    params: Params, scores: np.ndarray, labels: np.ndarray, maps: np.ndarray, masks: np.ndarray
) -> dict[str, float]:
    cfg = params.active.evaluate
    return {
        "image_auroc": metrics.image_auroc(scores, labels),
        "recall_at_fpr": metrics.recall_at_fpr(scores, labels, max_fpr=cfg.recall_max_fpr),
        "aupro": metrics.aupro(maps, masks, fpr_limit=cfg.aupro_fpr_limit),
        "pixel_auroc": metrics.pixel_auroc(maps, masks),
    }


def bootstrap_seed(params: Params, scenario: str) -> int:
    """One seed per image plan: every method, training seed and variant (counterfactuals of one plan, see
    catalog.PLAN_VARIANT) on a scenario's test images sees the same resamples, so their differences are paired."""
    return derive_seed(params.seed, "bootstrap", PLAN_VARIANT, scenario)


def image_plan(entries: Sequence[IndexEntry]) -> str | None:
    """A digest of the test images' plan (each image's stem, defect type and seed, in order): runs whose images are
    counterfactuals of one plan share it, whatever factors their variant adds. None for images that carry no seeds of
    their own (imported data)."""
    if len({e.seed for e in entries}) < len(entries):
        return None
    return bytes_sha256(json.dumps([[e.stem, e.defect_type, e.seed] for e in entries]).encode())[:16]


def compute_intervals(
    params: Params, seed: int, scores: np.ndarray, labels: np.ndarray, maps: np.ndarray, masks: np.ndarray
) -> dict[str, Any]:
    """Bootstrap replicates and percentile intervals of every metric of `compute_metrics`, on the same stratified
    resamples."""
    cfg = params.active.evaluate
    boot = bootstrap.Bootstrap.draw(labels, cfg.bootstrap_resamples, seed)
    aupro, aupro_grid = bootstrap.aupro_replicates(maps, masks, boot, cfg.aupro_fpr_limit)
    pixel_auroc, pixel_auroc_grid = bootstrap.pixel_auroc_replicates(maps, masks, boot)
    replicates = {
        "image_auroc": bootstrap.auroc_replicates(scores, labels, boot),
        "recall_at_fpr": bootstrap.recall_replicates(scores, labels, boot, cfg.recall_max_fpr),
        "aupro": aupro,
        "pixel_auroc": pixel_auroc,
    }
    return {
        "confidence": cfg.confidence,
        "resamples": cfg.bootstrap_resamples,
        "seed": seed,
        "aupro_grid_value": aupro_grid,  # AUPRO on the replicates' threshold grid, beside the exact one
        "pixel_auroc_grid_value": pixel_auroc_grid,  # the same for pixel AUROC
        "intervals": {name: list(bootstrap.interval(values, cfg.confidence)) for name, values in replicates.items()},
        "replicates": {name: [float(v) for v in values] for name, values in replicates.items()},
    }


FIGURE_DEFECTIVE = 3  # defective test images whose anomaly maps are kept for Figures 4 and 5
FIGURE_GOOD = 1  # good ones
CURVE_POINTS = 200  # points of the plotted PRO curve (the AUPRO value itself is exact)
CURVE_SAMPLE = 1 << 22  # normal pixels sampled to place the PRO curve's thresholds


def figure_indices(labels: np.ndarray) -> list[int]:
    """The first FIGURE_DEFECTIVE defective and FIGURE_GOOD good test images, in index order."""
    bad = [int(i) for i in np.flatnonzero(labels == 1)[:FIGURE_DEFECTIVE]]
    good = [int(i) for i in np.flatnonzero(labels == 0)[:FIGURE_GOOD]]
    return sorted(bad + good)


def pro_curve_points(maps: np.ndarray, masks: np.ndarray, fpr_limit: float) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, pro) at CURVE_POINTS thresholds spread over FPR in [0, fpr_limit], for plotting.

    Thresholds are quantiles of (a fixed-seed sample of) the normal pixels' scores, so the curve
    costs a few passes over the anomalous pixels only, at any dataset size.
    """
    from scipy import ndimage

    normal = maps[~masks]
    if normal.size > CURVE_SAMPLE:
        normal = normal[np.random.default_rng(0).choice(normal.size, CURVE_SAMPLE, replace=False)]
    fprs = np.linspace(0.0, fpr_limit, CURVE_POINTS)
    thresholds = np.quantile(normal, 1.0 - fprs[1:])
    region_scores = []
    for m, g in zip(maps, masks, strict=True):
        labels, n = ndimage.label(g, structure=np.ones((3, 3), bool))
        region_scores.extend(m[labels == k] for k in range(1, n + 1))
    pro = [np.mean([(r > t).mean() for r in region_scores]) for t in thresholds]
    measured = [(normal > t).mean() for t in thresholds]
    return np.array([0.0, *measured]), np.array([0.0, *pro])


def write_curves(path: Path, columns: dict[str, np.ndarray]) -> None:
    names = list(columns)
    rows = [",".join(names)] + [",".join(f"{v:.6g}" for v in row) for row in zip(*columns.values(), strict=True)]
    write_text_atomic(path, "\n".join(rows) + "\n")


def write_maps(path: Path, dataset: ShardDataset, maps: np.ndarray, indices: list[int]) -> None:
    """Anomaly maps of the figure images as float16 tensors keyed by stem (safetensors: deterministic bytes)."""
    from safetensors.numpy import save

    tensors = {dataset.entries[i].stem: maps[i].astype(np.float16) for i in indices}
    write_bytes_atomic(path, save(tensors))


def evaluate(
    params: Params,
    method: str,
    variant: str,
    scenario: str,
    renders: Path,
    model_dir: Path,
    out: Path,
    *,
    roc_csv: Path | None = None,
    pro_csv: Path | None = None,
    maps_out: Path | None = None,
) -> dict[str, Any]:
    """Score the test split with the model in `model_dir`; write metrics, their bootstrap intervals and
    replicates, and per-image scores to `out`.

    Optionally also the ROC and PRO curves as CSV (DVC plots) and the anomaly maps of a few test
    images (Figures 4 and 5).
    """
    from miad.methods import get_method

    model = get_method(method).load(model_dir, device=params.active.train.device)
    dataset = ShardDataset(split_dir(renders, variant, scenario, "test"))
    scores, maps, masks = predict_split(model, dataset, params.active.evaluate.batch_size)
    labels = dataset.labels
    result = {
        "method": method,
        "variant": variant,
        "scenario": scenario,
        "profile": params.profile,
        **({"image_plan": plan} if (plan := image_plan(dataset.entries)) else {}),
        "metrics": compute_metrics(params, scores, labels, maps, masks),
        "bootstrap": compute_intervals(params, bootstrap_seed(params, scenario), scores, labels, maps, masks),
        "images": [
            {"stem": e.stem, "label": e.label, "defect_type": e.defect_type, "score": float(s)}
            for e, s in zip(dataset.entries, scores, strict=True)
        ],
    }
    if roc_csv is not None:
        fpr, tpr, _ = metrics.roc_curve_points(scores, labels)
        write_curves(roc_csv, {"fpr": fpr, "tpr": tpr})
    if pro_csv is not None:
        pro_fpr, pro = pro_curve_points(maps, masks, params.active.evaluate.aupro_fpr_limit)
        write_curves(pro_csv, {"fpr": pro_fpr, "pro": pro})
    if maps_out is not None:
        write_maps(maps_out, dataset, maps, figure_indices(labels))
    dataset.close()
    write_json_atomic(out, result)
    return result
