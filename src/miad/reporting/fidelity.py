"""How closely our numbers follow the paper's: per table, one point per cell (ours against the paper's), the
Spearman rank correlation and the mean absolute difference, each with its own bootstrap interval, and how many of
the paper's values lie inside our intervals.

The intervals of rho and of the mean absolute difference resample the cells (with replacement) and, in the same
resample, take each drawn cell's own bootstrap replicate over test images: they cover both which cells happen to be
in the table and the noise of our values. Both are percentile intervals of biased statistics: noise in our values
pulls rho towards 0 and raises |ours - paper| on average, so where ours follow the paper closely an interval can lie
beside its point value; its width is what `miad compare` reads. The count of paper values inside our intervals has
no interval: it is a function of the intervals themselves. Seeded from params, vectorised, and made only of
element-wise float operations and sums, so they have the same bits on every CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from miad.bootstrap import interval
from miad.reporting.tables import Table
from miad.seeding import derive_seed


@dataclass(frozen=True)
class Fidelity:
    """One table's metric, ours against the paper's, cell by cell (cells where both values exist)."""

    name: str  # "table3_image_auroc": the metrics.json key
    title: str
    cells: tuple[tuple[str, str], ...]  # (row, method)
    paper: np.ndarray
    ours: np.ndarray
    low: np.ndarray  # our intervals (NaN where a cell has none)
    high: np.ndarray
    rho: float
    rho_interval: tuple[float, float] | None
    confidence: float
    mean_abs_diff_interval: tuple[float, float] | None = None

    @property
    def mean_abs_diff(self) -> float:
        return float(np.mean(np.abs(self.ours - self.paper)))

    @property
    def inside(self) -> int:
        """Cells whose paper value lies inside our interval."""
        return int(np.sum((self.low <= self.paper) & (self.paper <= self.high)))

    @property
    def with_interval(self) -> int:
        return int(np.sum(np.isfinite(self.low)))

    def metrics(self) -> dict[str, float]:
        """The numbers metrics.json holds under `fidelity/<name>`."""
        out = {"spearman_rho": self.rho, "mean_abs_diff": self.mean_abs_diff, "cells": float(len(self.cells))}
        if self.rho_interval is not None:
            out["spearman_rho_ci_low"], out["spearman_rho_ci_high"] = self.rho_interval
        if self.mean_abs_diff_interval is not None:
            out["mean_abs_diff_ci_low"], out["mean_abs_diff_ci_high"] = self.mean_abs_diff_interval
        out["paper_inside_interval"] = float(self.inside)
        return out


def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row pair (average ranks for ties); NaN where a row's ranks are all equal."""
    rx = rankdata(x, axis=-1)
    ry = rankdata(y, axis=-1)
    rx = rx - rx.mean(axis=-1, keepdims=True)
    ry = ry - ry.mean(axis=-1, keepdims=True)
    denominator = np.sqrt(np.sum(rx * rx, axis=-1) * np.sum(ry * ry, axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum(rx * ry, axis=-1) / denominator


def fidelity(table: Table, metric: str, seed: int, *, title: str) -> Fidelity | None:
    """Ours against the paper's over the scenario cells of `table` (mean rows left out); None with < 3 cells."""
    cells = [
        c for c in table.cells if c.metric == metric and c.row != "mean" and c.ours is not None and c.paper is not None
    ]
    if len(cells) < 3:
        return None
    paper = np.array([c.paper for c in cells], dtype=np.float64)
    ours = np.array([c.ours.value for c in cells], dtype=np.float64)  # type: ignore[union-attr]
    bounds = [c.ours.interval for c in cells]  # type: ignore[union-attr]
    low = np.array([np.nan if b is None else b[0] for b in bounds])
    high = np.array([np.nan if b is None else b[1] for b in bounds])
    confidence = cells[0].ours.confidence  # type: ignore[union-attr]
    name = f"{table.name}_{metric}"
    rho = float(spearman_rows(ours, paper))
    rho_interval = diff_interval = None
    replicates = [c.ours.replicates for c in cells]  # type: ignore[union-attr]
    if all(r is not None for r in replicates) and len({r.size for r in replicates}) == 1:  # type: ignore[union-attr]
        matrix = np.stack(replicates)  # (cells, resamples)
        resamples = matrix.shape[1]
        rng = np.random.default_rng(derive_seed(seed, "fidelity", name))
        drawn = rng.integers(0, len(cells), size=(resamples, len(cells)))
        drawn_ours = matrix[drawn, np.arange(resamples)[:, None]]  # (resamples, cells): drawn cells' replicates
        rhos = spearman_rows(drawn_ours, paper[drawn])
        rhos = rhos[np.isfinite(rhos)]
        if rhos.size:
            rho_interval = interval(rhos, confidence)
        diff_interval = interval(np.mean(np.abs(drawn_ours - paper[drawn]), axis=1), confidence)
    return Fidelity(
        name,
        title,
        tuple((c.row, c.method) for c in cells),
        paper,
        ours,
        low,
        high,
        rho,
        rho_interval,
        confidence,
        diff_interval,
    )
