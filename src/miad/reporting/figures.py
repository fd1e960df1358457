"""Figures of the report: Figure 2 (samples, masks outlined), dataset statistics, Figures 4/5 (anomaly maps),
and the fidelity plot (ours against the paper's)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from miad.atomic import atomic_path
from miad.catalog import SCENARIOS
from miad.data.dataset import Sample, ShardDataset
from miad.data.layout import split_dir
from miad.method_catalog import METHOD_NAMES, METHOD_TITLES
from miad.reporting.fidelity import Fidelity

OUTLINE_RGB = (255, 40, 40)  # mask outline colour
PNG_METADATA = {"Software": None}  # keep library versions out of the bytes


def outline_mask(image: np.ndarray, mask: np.ndarray, thickness: int = 1) -> np.ndarray:
    """A copy of `image` with the contours of `mask` drawn on it."""
    contours, _ = cv2.findContours((mask > 0).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    out = np.ascontiguousarray(image.copy())
    cv2.drawContours(out, contours, -1, OUTLINE_RGB, thickness)
    return out


def pick_samples(dataset: ShardDataset, count: int) -> tuple[list[Sample], list[Sample]]:
    """The first `count` good samples and `count` defective ones, taking the defect types in turn (index order)."""
    good = [i for i, e in enumerate(dataset.entries) if e.label == 0][:count]
    by_type: dict[str, list[int]] = {}
    for i, entry in enumerate(dataset.entries):
        if entry.label == 1:
            by_type.setdefault(entry.defect_type, []).append(i)
    bad: list[int] = []
    queues = [by_type[kind] for kind in sorted(by_type)]
    while len(bad) < count and any(queues):
        for queue in queues:
            if queue and len(bad) < count:
                bad.append(queue.pop(0))
    return [dataset[i] for i in good], [dataset[i] for i in bad]


def save_figure(fig: plt.Figure, path: Path, dpi: int = 150) -> None:
    """Save a figure as PNG atomically (temp file, then rename)."""
    try:
        with atomic_path(path, suffix=".png") as temp:
            fig.savefig(temp, dpi=dpi, metadata=PNG_METADATA)
    finally:
        plt.close(fig)


def sample_grid(renders: Path, variant: str, scenarios: Sequence[str], count: int, path: Path) -> None:
    """Figure 2: one row per scenario, `count` good test images, then `count` defective ones with masks outlined."""
    rows = []
    for scenario in scenarios:
        dataset = ShardDataset(split_dir(renders, variant, scenario, "test"))
        good, bad = pick_samples(dataset, count)
        dataset.close()
        rows.append((scenario, good, bad))
    if not rows:
        raise ValueError(f"no scenarios given for Figure 2 ({variant} set)")
    ncols = 2 * count
    fig, axes = plt.subplots(len(rows), ncols, figsize=(1.5 * ncols, 1.6 * len(rows) + 0.5), squeeze=False)
    for r, (scenario, good, bad) in enumerate(rows):
        cells = [*good, *[None] * (count - len(good)), *bad, *[None] * (count - len(bad))]
        for c, sample in enumerate(cells):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if sample is None:
                ax.axis("off")
                continue
            defective = sample.entry.label == 1
            ax.imshow(outline_mask(sample.image, sample.mask) if defective else sample.image)
            label = sample.entry.defect_type.replace("_", " ") if defective else "good"
            ax.set_title(label, fontsize=7, color="firebrick" if defective else "black", pad=2)
        axes[r, 0].set_ylabel(SCENARIOS[scenario].title, fontsize=7)
    fig.suptitle(f"MIAD-like test samples ({variant} set); defect masks outlined in red", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def angle_histograms(stats: dict, datasets: Sequence[str], path: Path) -> None:
    """Camera azimuth and elevation histograms per split (10-degree bins), one row per dataset."""
    fig, axes = plt.subplots(len(datasets), 2, figsize=(7.0, 1.4 * len(datasets) + 0.6), squeeze=False)
    for r, key in enumerate(datasets):
        for c, angle in enumerate(("theta", "phi")):
            ax = axes[r, c]
            for split, colour in (("train", "tab:blue"), ("test", "tab:orange")):
                hist = stats[key][split][f"{angle}_histogram"]
                ax.stairs(hist["counts"], hist["edges"], color=colour, label=split)
            ax.tick_params(labelsize=6)
            ax.set_title(f"{key}: {'azimuth' if angle == 'theta' else 'elevation'} (deg)", fontsize=7, pad=2)
    axes[0, 0].legend(fontsize=6)
    fig.suptitle("Camera angles per split (train and test never share a 1-degree bin)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def defect_ratio_chart(stats: dict, path: Path) -> None:
    """Defect pixel ratio of each dataset's defective test images beside the paper's Table 2 value (log scale)."""
    keys = [k for k in stats if stats[k]["test"]["defect_pixel_ratio"]]
    ours = [100 * stats[k]["test"]["defect_pixel_ratio"]["mean"] for k in keys]
    paper = [100 * stats[k]["paper_defect_pixel_ratio"] for k in keys]
    fig, ax = plt.subplots(figsize=(7.0, 0.3 * len(keys) + 1.2))
    y = np.arange(len(keys))
    ax.barh(y - 0.2, ours, height=0.4, label="ours", color="tab:blue")
    ax.barh(y + 0.2, paper, height=0.4, label="paper (Table 2)", color="tab:gray")
    ax.set_yticks(y, keys, fontsize=6)
    ax.set_xscale("log")
    ax.set_xlabel("defect pixels, % of the image (mean over defective test images)", fontsize=7)
    ax.tick_params(axis="x", labelsize=6)
    ax.invert_yaxis()
    ax.legend(fontsize=6)
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


def fidelity_plot(panels: Sequence[Fidelity], path: Path) -> None:
    """Ours against the paper's, one point per table cell with our interval as a bar, the identity line, and
    Spearman's rho with its bootstrap interval; one panel per table metric, one colour per method."""
    if not panels:
        raise ValueError("no table has both our values and the paper's: nothing to plot")
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.8), squeeze=False)
    colours = dict(zip(METHOD_NAMES, plt.get_cmap("tab10").colors, strict=False))
    for ax, panel in zip(axes[0], panels, strict=True):
        methods = [method for _, method in panel.cells]
        for method in dict.fromkeys(methods):
            pick = np.array([m == method for m in methods])
            # a bootstrap interval can miss its own point estimate by a hair (AUPRO's resamples use a grid; a
            # one-image class makes every resample equal), and matplotlib refuses negative error bars
            below = np.clip(np.nan_to_num(panel.ours[pick] - panel.low[pick]), 0.0, None)
            above = np.clip(np.nan_to_num(panel.high[pick] - panel.ours[pick]), 0.0, None)
            ax.errorbar(
                panel.paper[pick],
                panel.ours[pick],
                yerr=np.vstack([below, above]),
                fmt="o",
                markersize=4,
                elinewidth=0.8,
                capsize=2,
                alpha=0.8,
                color=colours.get(method, "black"),
                label=METHOD_TITLES.get(method, method),
            )
        ax.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1, label="ours = paper")
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_aspect("equal")
        ax.set_xlabel("paper")
        ax.set_ylabel("ours")
        ax.set_title(panel.title, fontsize=9)
        level = round(100 * panel.confidence)
        rho = f"Spearman ρ = {panel.rho:.2f}"
        if panel.rho_interval is not None:
            rho += f" [{panel.rho_interval[0]:.2f}, {panel.rho_interval[1]:.2f}]"
        text = (
            f"{rho}\nmean |ours − paper| = {panel.mean_abs_diff:.2f}\n"
            f"paper inside our {level}% interval: {panel.inside}/{panel.with_interval}"
        )
        ax.text(0.03, 0.97, text, transform=ax.transAxes, va="top", fontsize=7, bbox={"fc": "white", "alpha": 0.8})
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=7, frameon=False)
    fig.suptitle("Fidelity: our values against the paper's (bars: our bootstrap intervals)", fontsize=10)
    fig.tight_layout(rect=(0.0, 0.08, 1.0, 1.0))
    save_figure(fig, path)
