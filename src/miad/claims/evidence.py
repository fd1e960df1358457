"""What the rules need, read from results: every cell's value (metrics.json) and its bootstrap replicates (the run
files under results/runs and results/runs_size), and effects built from cells with their replicates.

Pairing. Replicate i of every run on one test split comes from the same resample of its test images
(miad.stages.evaluate seeds the resamples by dataset only), so within one split a difference of two methods, or of
two Table 7 prefixes (evaluated on the main test split), subtracts replicates resample by resample: a paired
bootstrap, whose interval is narrower the more the two runs' errors go together. Cells of different splits are
independent: their replicates are combined after a fixed permutation per split, so index i of one split's
replicates meets an unrelated resample of the other's (a bootstrap of independent estimates), and the detail says
"unpaired".

Joint resampling. A run file may declare `"image_plan": "<name>"`: image i of every run with that plan shows the
same object, defect and placement (the counterfactual variants of one plan: `miad evaluate` writes a digest of the
test images' stems, defect types and seeds, and every variant of a scenario renders the main dataset's plan). When
such runs already share their bootstrap seed (`miad evaluate` seeds by scenario, so they do), their replicates are
joint as stored, every metric; otherwise the image metrics (AUROC, Recall@1%FPR) are resampled again jointly from
the runs' per-image scores, one `miad.bootstrap.Bootstrap` over the plan's images for every run of the plan, and
pixel metrics, which need the anomaly maps, stay unpaired.

Without run files a cell's interval in metrics.json stands in for its replicates: a normal distribution with the
standard error the interval implies (at ASSUMED_CONFIDENCE), independent of every other cell, said in the detail.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from miad.bootstrap import Bootstrap, auroc_replicates, recall_replicates
from miad.errors import MiadError
from miad.seeding import derive_seed

METRICS = ("image_auroc", "recall_at_fpr", "aupro", "pixel_auroc")
IMAGE_METRICS = ("image_auroc", "recall_at_fpr")  # computable again from per-image scores
RECALL_MAX_FPR = 0.01  # the paper's Recall@1%FPR
ASSUMED_CONFIDENCE = 0.95  # the confidence of metrics.json's intervals when no run file says otherwise
APPROX_RESAMPLES = 2000  # normal pseudo-replicates of a cell known only by its interval
SECTIONS = ("fidelity", "claims")  # metrics.json sections that are not dataset cells
_RUN_NAME = re.compile(r"^(?P<scenario>[a-z_]+?)(?:-seed(?P<seed>\d+))?$")
_SIZE_NAME = re.compile(r"^f(?P<fraction>[0-9.]+)$")

CellKey = tuple[str, str, str]  # (dataset key like "baseline/witness_mark" or "table7/0.2/main/...", method, metric)


class EvidenceError(MiadError):
    """A results file that cannot be read as what the claims need."""


@dataclass(frozen=True, eq=False)
class Cell:
    """One metric of one method on one dataset, with its bootstrap replicates."""

    value: float
    replicates: np.ndarray | None  # (resamples,)
    group: str  # replicates of cells in one group come from the same resamples, index by index
    source: str  # "runs", "interval" (normal approximation of metrics.json's interval) or "point" (no uncertainty)


@dataclass(frozen=True, eq=False)
class Effect:
    """A linear combination of cells: its point value, replicates and how they were paired."""

    point: float
    replicates: np.ndarray | None
    note: str


def _permutation(group: str, size: int) -> np.ndarray:
    return np.random.default_rng(derive_seed(0, "claims", "unpair", group)).permutation(size)


class Evidence:
    """The cells of one results folder (or synthetic ones) and the effects the findings compare."""

    def __init__(
        self,
        cells: Mapping[CellKey, Cell],
        *,
        profile: str = "",
        train_images: int | None = None,
        confidence: float = ASSUMED_CONFIDENCE,
    ) -> None:
        self.cells = dict(cells)
        self.confidence = confidence  # the runs' own (params' evaluate.confidence), the default of a verdict
        self.profile = profile  # the profile the runs record (empty when unknown)
        self.train_images = train_images  # training images of the full (100%) set, when known

    def get(self, dataset: str, method: str, metric: str) -> Cell | None:
        return self.cells.get((dataset, method, metric))

    def fractions(self, scenario: str) -> list[float]:
        """Table 7's training-set fractions that have cells for `scenario`, ascending."""
        found = {float(k.split("/")[1]) for k, _, _ in self.cells if k.startswith("table7/") and k.endswith(scenario)}
        return sorted(found)

    def effect(self, terms: Sequence[tuple[float, CellKey]]) -> Effect | None:
        """sum(weight * cell) over `terms`; None when a cell is missing. Replicates of one group (test split or
        image plan) combine index by index (paired); different groups after a fixed permutation each (unpaired)."""
        cells = [self.cells.get(key) for _, key in terms]
        if any(c is None for c in cells):
            return None
        present = [c for c in cells if c is not None]
        point = float(sum(w * c.value for (w, _), c in zip(terms, present, strict=True)))
        if any(c.replicates is None for c in present):
            return Effect(point, None, "a cell has no interval")
        groups = list(dict.fromkeys(c.group for c in present))
        size = min(c.replicates.size for c in present)  # type: ignore[union-attr]
        orders = {g: np.arange(size) if len(groups) == 1 else _permutation(g, size) for g in groups}
        replicates = np.zeros(size)
        for (weight, _), cell in zip(terms, present, strict=True):
            replicates += weight * cell.replicates[:size][orders[cell.group]]  # type: ignore[index]
        sources = {c.source for c in present}
        if len(groups) == 1:
            note = "paired: one set of test-image resamples"
        else:
            note = f"unpaired: {len(groups)} independent test splits (difference of independent replicates)"
        if "interval" in sources:
            note += "; some cells known only by their interval (normal approximation)"
        return Effect(point, replicates, note)


# ------------------------------------------------------------------------------------------------ reading files
def read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise EvidenceError(f"{path}: not found; expected {what}") from err
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise EvidenceError(f"{path}: cannot be read as JSON ({err}); expected {what}") from err
    if not isinstance(data, dict):
        raise EvidenceError(f"{path}: expected {what} (a JSON object), got {type(data).__name__}")
    return data


def metrics_cells(metrics: Mapping[str, Any], source: str) -> dict[CellKey, tuple[float, tuple[float, float] | None]]:
    """{(dataset, method, metric): (value, interval or None)} of a metrics.json, its non-cell sections left out."""
    out: dict[CellKey, tuple[float, tuple[float, float] | None]] = {}
    for dataset, methods in metrics.items():
        if dataset in SECTIONS:
            continue
        if not isinstance(methods, Mapping):
            raise EvidenceError(f"{source}: {dataset}: expected a mapping of methods to metrics, got {methods!r}")
        for method, values in methods.items():
            if not isinstance(values, Mapping):
                raise EvidenceError(f"{source}: {dataset}.{method}: expected a mapping of metrics, got {values!r}")
            for metric in METRICS:
                value = values.get(metric)
                if value is None:
                    continue
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise EvidenceError(f"{source}: {dataset}.{method}.{metric}: expected a number, got {value!r}")
                low, high = values.get(f"{metric}_ci_low"), values.get(f"{metric}_ci_high")
                bounds = None if low is None or high is None else (float(low), float(high))
                out[(dataset, method, metric)] = (float(value), bounds)
    return out


def _run_files(runs: Path | None, size_runs: Path | None) -> dict[tuple[str, str], list[Path]]:
    """{(dataset key, method): run files (one per training seed)} under runs/ and runs_size/."""
    found: dict[tuple[str, str], list[Path]] = {}
    if runs is not None and Path(runs).is_dir():
        for path in sorted(Path(runs).glob("*/*/*.json")):
            match = _RUN_NAME.match(path.stem)
            if match and not path.name.endswith(".provenance.json"):
                method, variant = path.parent.parent.name, path.parent.name
                found.setdefault((f"{variant}/{match['scenario']}", method), []).append(path)
    if size_runs is not None and Path(size_runs).is_dir():
        for path in sorted(Path(size_runs).glob("*/main/*/f*.json")):
            match = _SIZE_NAME.match(path.stem)
            if match and not path.name.endswith(".provenance.json"):
                method, scenario = path.parent.parent.parent.name, path.parent.name
                key = f"table7/{float(match['fraction']):g}/main/{scenario}"
                found.setdefault((key, method), []).append(path)
    for (key, method), paths in list(found.items()):  # Table 7's 100% row is the main models' run
        if key.startswith("main/"):
            found.setdefault((f"table7/1/{key}", method), paths)
    return found


def _run_replicates(run: Mapping[str, Any], path: Path) -> dict[str, np.ndarray]:
    boot = run.get("bootstrap")
    if not isinstance(boot, Mapping) or not isinstance(boot.get("replicates"), Mapping):
        raise EvidenceError(f"{path}: expected `bootstrap.replicates` (an evaluation run of `miad evaluate`)")
    return {m: np.asarray(v, dtype=np.float64) for m, v in boot["replicates"].items() if m in METRICS}


def _split_group(run: Mapping[str, Any]) -> str:
    boot = run["bootstrap"]
    return f"split:{run.get('variant')}/{run.get('scenario')}/seed{boot.get('seed')}/n{len(run.get('images', []))}"


def _joint_replicates(plan: str, runs: Sequence[tuple[Path, dict[str, Any]]]) -> dict[int, dict[str, np.ndarray]]:
    """Image-metric replicates of every run of one image plan from one Bootstrap over the plan's images, keyed by
    the run's position in `runs`; empty when the runs' images do not line up (then they stay unpaired)."""
    labels = [np.asarray([int(i["label"]) for i in run.get("images", [])]) for _, run in runs]
    if not labels[0].size or any(not np.array_equal(labels[0], y) for y in labels[1:]):
        return {}
    resamples = int(
        runs[0][1]["bootstrap"].get("resamples") or len(runs[0][1]["bootstrap"]["replicates"]["image_auroc"])
    )
    boot = Bootstrap.draw(labels[0], resamples, derive_seed(0, "claims", "plan", plan))
    out = {}
    for position, (_, run) in enumerate(runs):
        scores = np.asarray([float(i["score"]) for i in run["images"]])
        out[position] = {
            "image_auroc": auroc_replicates(scores, labels[0], boot),
            "recall_at_fpr": recall_replicates(scores, labels[0], boot, RECALL_MAX_FPR),
        }
    return out


def _approximate(value: float, bounds: tuple[float, float]) -> np.ndarray:
    """Normal pseudo-replicates with the standard error the interval implies (sorted; unpaired by permutation)."""
    z = NormalDist().inv_cdf((1.0 + ASSUMED_CONFIDENCE) / 2.0)
    se = (bounds[1] - bounds[0]) / (2.0 * z)
    quantiles = [NormalDist().inv_cdf((i + 0.5) / APPROX_RESAMPLES) for i in range(APPROX_RESAMPLES)]
    return value + se * np.asarray(quantiles)


def load_evidence(
    metrics_path: Path, runs: Path | None = None, size_runs: Path | None = None, *, train_images: int | None = None
) -> Evidence:
    """Evidence from a metrics.json and, where present, its run files' replicates."""
    listed = metrics_cells(
        read_json(metrics_path, "metrics of `miad report` ({dataset: {method: {metric}}})"), str(metrics_path)
    )
    files = _run_files(runs, size_runs)
    loaded: dict[Path, dict[str, Any]] = {}
    replicates = {}
    for paths in files.values():
        for path in paths:
            if path not in loaded:
                loaded[path] = read_json(path, "an evaluation run of `miad evaluate`")
                replicates[path] = _run_replicates(loaded[path], path)  # checked once, early
    groups = {path: {m: _split_group(run) for m in METRICS} for path, run in loaded.items()}
    plans: dict[str, list[Path]] = {}
    for path, run in loaded.items():
        if isinstance(run.get("image_plan"), str):
            plans.setdefault(run["image_plan"], []).append(path)
    for plan, paths in plans.items():
        seeds = {loaded[p]["bootstrap"].get("seed") for p in paths}
        if len(seeds) == 1:  # stored replicates are joint already
            for p in paths:
                groups[p] = {m: f"plan:{plan}" for m in METRICS}
            continue
        joint = _joint_replicates(plan, [(p, loaded[p]) for p in paths])
        for position, fresh in joint.items():
            replicates[paths[position]].update(fresh)
            groups[paths[position]].update({m: f"plan:{plan}/joint" for m in fresh})
    cells: dict[CellKey, Cell] = {}
    for (dataset, method, metric), (value, bounds) in listed.items():
        paths = [p for p in files.get((dataset, method), []) if metric in replicates[p]]
        if paths and len({groups[p][metric] for p in paths}) == 1:
            stacked = np.mean(np.stack([replicates[p][metric] for p in paths]), axis=0)  # over training seeds
            cells[(dataset, method, metric)] = Cell(value, stacked, groups[paths[0]][metric], "runs")
        elif bounds is not None and all(math.isfinite(b) for b in bounds):
            reps = _approximate(value, bounds)
            cells[(dataset, method, metric)] = Cell(value, reps, f"approx:{dataset}/{method}/{metric}", "interval")
        else:
            cells[(dataset, method, metric)] = Cell(value, None, f"point:{dataset}/{method}/{metric}", "point")
    profiles = sorted({str(run.get("profile")) for run in loaded.values() if run.get("profile")})
    levels = {float(run["bootstrap"]["confidence"]) for run in loaded.values() if "confidence" in run["bootstrap"]}
    confidence = levels.pop() if len(levels) == 1 else ASSUMED_CONFIDENCE
    return Evidence(cells, profile=",".join(profiles), train_images=train_images, confidence=confidence)
