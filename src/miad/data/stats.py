"""Dataset statistics against the paper (Table 2) and the split-leak check, read from the shard indexes only.

Per rendered dataset (`<variant>/<scenario>`): images per split and defect type, the defect pixel ratio of the
defective images next to the paper's, the object's coverage of the frame, camera angle histograms per split and the
backgrounds and textures drawn; plus the leak check: for every uncontrolled factor the dataset applies, the train and
test splits must share no 1-degree angle bin (UV), no background (UB) and no texture (US). No pixel is decoded.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from miad.catalog import SCENARIOS
from miad.data.dataset import ShardDataset
from miad.data.layout import SPLITS, dataset_key, split_dir
from miad.data.manifest import read_manifest
from miad.data.shards import IndexEntry

ANGLE_BIN_DEG = 10.0  # histogram bins for the report (the leak check uses the paper's 1-degree bins)
PAPER_RATIO_TOLERANCE = 3.0  # the target: within a factor of 3 of Table 2


def _entries(renders: Path, variant: str, scenario: str, split: str) -> tuple[list[IndexEntry], dict[str, Any]]:
    directory = split_dir(renders, variant, scenario, split)
    dataset = ShardDataset(directory)
    try:
        return list(dataset.entries), dict(read_manifest(directory).header)
    finally:
        dataset.close()


def _summary(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    array = np.asarray(values, dtype=float)
    return {"mean": float(array.mean()), "min": float(array.min()), "max": float(array.max())}


def _histogram(values: Iterable[float], lo: float, hi: float) -> dict[str, Any]:
    edges = np.arange(math.floor(lo / ANGLE_BIN_DEG), math.ceil(hi / ANGLE_BIN_DEG) + 1) * ANGLE_BIN_DEG
    counts, _ = np.histogram(list(values), bins=edges)
    return {"edges": edges.tolist(), "counts": counts.tolist()}


def background_name(record: dict[str, Any]) -> str | None:
    """The pool item an image's background came from (None when controlled)."""
    background = record.get("background") or {}
    if background.get("kind") == "night_layout":
        return f"layout:{background['layout']}"
    return background.get("name")


def texture_name(record: dict[str, Any]) -> str | None:
    """The degradation texture of an image's surface (None when controlled)."""
    return (record.get("surface") or {}).get("name")


def angle_bins(record: dict[str, Any]) -> tuple[int, int]:
    """The paper's 1-degree bins (floor of theta and phi) of an image's camera."""
    camera = record["camera"]
    return math.floor(camera["theta"]), math.floor(camera["phi"])


def leaks(train: Sequence[IndexEntry], test: Sequence[IndexEntry], factors: Sequence[str]) -> dict[str, list]:
    """What the test split shares with the train split, per applied factor: empty lists mean no leak."""
    found: dict[str, list] = {}
    if "uv" in factors:
        train_theta = {angle_bins(e.record)[0] for e in train}
        train_phi = {angle_bins(e.record)[1] for e in train}
        found["theta_bins"] = sorted({angle_bins(e.record)[0] for e in test} & train_theta)
        found["phi_bins"] = sorted({angle_bins(e.record)[1] for e in test} & train_phi)
    if "ub" in factors:
        found["backgrounds"] = sorted(
            ({background_name(e.record) for e in test} & {background_name(e.record) for e in train}) - {None}
        )
    if "us" in factors:
        found["textures"] = sorted(
            ({texture_name(e.record) for e in test} & {texture_name(e.record) for e in train}) - {None}
        )
    return found


def split_stats(entries: Sequence[IndexEntry], pixels: int) -> dict[str, Any]:
    """Counts, defect pixel ratio, object coverage, angle histograms and pools drawn, for one split."""
    defective = [e for e in entries if e.label == 1]
    by_type: dict[str, list[float]] = {}
    for e in defective:
        by_type.setdefault(e.defect_type, []).append(e.record["defect_pixels"] / pixels)
    coverage = [e.record["object_pixels"] / pixels for e in entries if "object_pixels" in e.record]
    cameras = [e.record["camera"] for e in entries if "camera" in e.record]  # imported datasets have none
    thetas = [camera["theta"] for camera in cameras]
    phis = [camera["phi"] for camera in cameras]
    return {
        "images": len(entries),
        "per_type": dict(sorted(Counter(e.defect_type for e in entries).items())),
        "defect_pixel_ratio": _summary([r for ratios in by_type.values() for r in ratios]),
        "defect_pixel_ratio_per_type": {kind: _summary(ratios) for kind, ratios in sorted(by_type.items())},
        "object_coverage": _summary(coverage),
        "theta_histogram": _histogram(thetas, 0.0, 360.0),
        "phi_histogram": _histogram(phis, -90.0, 90.0),
        "backgrounds": len({background_name(e.record) for e in entries} - {None}),
        "textures": len({texture_name(e.record) for e in entries} - {None}),
    }


def dataset_stats(renders: Path, variant: str, scenario: str) -> dict[str, Any]:
    """Statistics of one rendered dataset, both splits, with the paper's ratio and the leak check."""
    train, header = _entries(renders, variant, scenario, "train")
    test, _ = _entries(renders, variant, scenario, "test")
    pixels = int(header["height"]) * int(header["width"]) if "height" in header else int(header["resolution"]) ** 2
    factors = list(header["factors"])
    stats = {"train": split_stats(train, pixels), "test": split_stats(test, pixels)}
    ours = stats["test"]["defect_pixel_ratio"]
    paper = SCENARIOS[scenario].paper_defect_pixel_ratio
    ratio = None if ours is None else ours["mean"] / paper
    found = leaks(train, test, factors)
    return {
        "variant": variant,
        "scenario": scenario,
        "factors": factors,
        "resolution": header["resolution"],
        "source": header.get("source", {"layout": "rendered"}),
        **stats,
        "paper_defect_pixel_ratio": paper,
        "defect_ratio_vs_paper": ratio,
        "within_3x_of_paper": None if ratio is None else 1 / PAPER_RATIO_TOLERANCE <= ratio <= PAPER_RATIO_TOLERANCE,
        "leaks": found,
        "leak_free": not any(found.values()),
    }


def rendered_datasets(renders: Path) -> list[tuple[str, str]]:
    """(variant, scenario) of every dataset under `renders` with both splits' manifests."""
    found = []
    for variant_dir in sorted(p for p in Path(renders).iterdir() if p.is_dir()):
        for scenario_dir in sorted(p for p in variant_dir.iterdir() if p.is_dir()):
            if all((scenario_dir / split / "manifest.json").is_file() for split in SPLITS):
                found.append((variant_dir.name, scenario_dir.name))
    return found


def collect_stats(renders: Path, datasets: Sequence[tuple[str, str]] | None = None) -> dict[str, Any]:
    """{`<variant>/<scenario>`: stats} for the given datasets (default: every rendered one)."""
    chosen = rendered_datasets(renders) if datasets is None else datasets
    return {dataset_key(v, s): dataset_stats(renders, v, s) for v, s in chosen}


def format_stats_table(stats: dict[str, Any]) -> str:
    """One line per dataset: factors, images per split, defect pixel ratio beside the paper's, coverage, leaks."""
    lines = [
        f"{'dataset':42s} {'factors':9s} {'train':>5s} {'test':>5s} {'defect %':>9s} {'paper %':>8s} "
        f"{'coverage %':>10s}  leaks"
    ]
    for key, row in stats.items():
        ratio = row["test"]["defect_pixel_ratio"]
        coverage = row["test"]["object_coverage"]
        lines.append(
            f"{key:42s} {'+'.join(row['factors']) or '-':9s} {row['train']['images']:5d} {row['test']['images']:5d} "
            f"{100 * ratio['mean'] if ratio else float('nan'):9.3f} {100 * row['paper_defect_pixel_ratio']:8.2f} "
            f"{100 * coverage['mean'] if coverage else float('nan'):10.1f}  "
            f"{'none' if row['leak_free'] else row['leaks']}"
        )
    return "\n".join(lines)


def leaking_datasets(stats: dict[str, Any]) -> list[str]:
    """The datasets whose train and test splits share an angle bin, a background or a texture."""
    return [key for key, row in stats.items() if not row["leak_free"]]
