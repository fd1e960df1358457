"""Figures of the report. Figure 2: good and defective test samples per scenario, masks outlined."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from miad.atomic import temp_path_for
from miad.catalog import SCENARIOS
from miad.data.dataset import Sample, ShardDataset
from miad.data.layout import split_dir

OUTLINE_RGB = (255, 40, 40)  # mask outline colour
PNG_METADATA = {"Software": None}  # keep library versions out of the bytes


def outline_mask(image: np.ndarray, mask: np.ndarray, thickness: int = 1) -> np.ndarray:
    """A copy of `image` with the contours of `mask` drawn on it."""
    contours, _ = cv2.findContours((mask > 0).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    out = np.ascontiguousarray(image.copy())
    cv2.drawContours(out, contours, -1, OUTLINE_RGB, thickness)
    return out


def pick_samples(dataset: ShardDataset, count: int) -> tuple[list[Sample], list[Sample]]:
    """The first `count` good and first `count` defective samples, in index order (deterministic)."""
    good, bad = [], []
    for i, entry in enumerate(dataset.entries):
        bucket = good if entry.label == 0 else bad
        if len(bucket) < count:
            bucket.append(dataset[i])
        if len(good) == count and len(bad) == count:
            break
    return good, bad


def save_figure(fig: plt.Figure, path: Path, dpi: int = 150) -> None:
    """Save a figure as PNG atomically (temp file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path_for(path).with_suffix(".png")
    try:
        fig.savefig(temp, dpi=dpi, metadata=PNG_METADATA)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
        plt.close(fig)


def sample_grid(renders: Path, variant: str, scenarios: Sequence[str], count: int, path: Path) -> None:
    """Figure 2: per scenario a column block, good samples on top, defective ones below with outlines."""
    columns = []
    for scenario in scenarios:
        dataset = ShardDataset(split_dir(renders, variant, scenario, "test"))
        good, bad = pick_samples(dataset, count)
        dataset.close()
        columns.extend((scenario, g, b) for g, b in zip(good, bad, strict=False))
    if not columns:
        raise ValueError(f"no test samples found under {renders}/{variant} for {list(scenarios)}")
    fig, axes = plt.subplots(2, len(columns), figsize=(2.0 * len(columns), 4.3), squeeze=False)
    for col, (scenario, good, bad) in enumerate(columns):
        axes[0, col].imshow(good.image)
        axes[1, col].imshow(outline_mask(bad.image, bad.mask))
        if col == 0 or columns[col - 1][0] != scenario:  # one title per scenario block
            axes[0, col].set_title(SCENARIOS[scenario].title, fontsize=8, loc="left")
        axes[1, col].set_xlabel(bad.entry.defect_type.replace("_", " "), fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_ylabel("good", fontsize=8)
    axes[1, 0].set_ylabel("defective", fontsize=8)
    fig.suptitle(f"MIAD-like samples ({variant} set): test images, defect masks outlined in red", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def _normalise(values: np.ndarray) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def anomaly_map_grid(
    renders: Path,
    maps_root: Path,
    variant: str,
    scenarios: Sequence[str],
    methods: Sequence[str],
    path: Path,
    *,
    pick: slice,
    title: str,
) -> None:
    """Figures 4/5: per test image a row: image, ground truth, then each method's anomaly map.

    Maps come from the evaluate stage (`results/maps/<method>/<variant>/<scenario>.safetensors`); each is
    scaled to [0, 1] within its own image, as the paper's figures show relative heat. `pick` selects
    which of the kept images (defective first) go into this figure.
    """
    from safetensors.numpy import load_file

    from miad.method_catalog import METHOD_TITLES

    rows = []
    for scenario in scenarios:
        maps = {m: load_file(str(maps_root / m / variant / f"{scenario}.safetensors")) for m in methods}
        dataset = ShardDataset(split_dir(renders, variant, scenario, "test"))
        by_stem = {entry.stem: i for i, entry in enumerate(dataset.entries)}
        defective = {entry.stem for entry in dataset.entries if entry.label == 1}
        stems = sorted(next(iter(maps.values())), key=lambda stem: (stem not in defective, stem))
        for stem in stems[pick]:
            sample = dataset[by_stem[stem]]
            rows.append((scenario, sample, [maps[m][stem].astype(np.float32) for m in methods]))
        dataset.close()
    if not rows:
        raise ValueError(f"no anomaly maps under {maps_root} for {list(scenarios)}")
    cols = 2 + len(methods)
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.6 * cols, 1.7 * len(rows) + 0.5), squeeze=False)
    for r, (scenario, sample, method_maps) in enumerate(rows):
        axes[r, 0].imshow(sample.image)
        axes[r, 1].imshow(sample.mask, cmap="gray", vmin=0, vmax=255)
        for c, heat in enumerate(method_maps, start=2):
            axes[r, c].imshow(sample.image)
            axes[r, c].imshow(_normalise(heat), cmap="jet", alpha=0.5, vmin=0, vmax=1)
        axes[r, 0].set_ylabel(f"{SCENARIOS[scenario].title}\n{sample.entry.defect_type}", fontsize=6)
    for c, name in enumerate(["image", "ground truth", *(METHOD_TITLES[m] for m in methods)]):
        axes[0, c].set_title(name, fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
