"""Our value of one table cell with its uncertainty: a bootstrap interval over test images and, where several
training seeds ran, the spread over seeds.

Runs on one test split share their bootstrap resamples (miad.stages.evaluate seeds them by dataset only), so the
interval of a mean, over training seeds or over the methods of a row, comes from averaging replicates resample by
resample. Different test splits resample independently, so averaging their replicates index by index is a valid
bootstrap of a mean over scenarios too.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from miad.bootstrap import interval

DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True, eq=False)
class Estimate:
    """A metric's value (the mean over training seeds), its bootstrap replicates and its per-seed values."""

    value: float
    replicates: np.ndarray | None = None  # (resamples,) bootstrap replicates of `value`
    seed_values: tuple[float, ...] = ()  # one value per training seed when there are several
    confidence: float = DEFAULT_CONFIDENCE

    @property
    def interval(self) -> tuple[float, float] | None:
        """The percentile bootstrap interval, or None without replicates."""
        return None if self.replicates is None else interval(self.replicates, self.confidence)

    @property
    def seed_std(self) -> float | None:
        """Sample standard deviation over training seeds, or None with fewer than two."""
        return statistics.stdev(self.seed_values) if len(self.seed_values) > 1 else None

    def excludes(self, value: float | None) -> bool:
        """True when `value` is given and lies outside the interval."""
        bounds = self.interval
        return value is not None and bounds is not None and not bounds[0] <= value <= bounds[1]


def as_estimate(value: Estimate | float | None) -> Estimate | None:
    """An Estimate as is; a bare number (a run without bootstrap) as an Estimate without uncertainty."""
    return value if value is None or isinstance(value, Estimate) else Estimate(float(value))


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def mean_of(estimates: Sequence[Estimate | None]) -> Estimate | None:
    """The mean of several estimates (over seeds, scenarios or methods); None while any is missing.

    Replicates average resample by resample when every estimate has them, in equal number; per-seed values
    average seed by seed when every estimate has the same number of seeds."""
    if not estimates or any(e is None for e in estimates):
        return None
    items = [e for e in estimates if e is not None]
    replicates = None
    if all(e.replicates is not None for e in items) and len({e.replicates.size for e in items}) == 1:  # type: ignore[union-attr]
        replicates = np.mean(np.stack([e.replicates for e in items]), axis=0)
    seeds = {len(e.seed_values) for e in items}
    seed_values: tuple[float, ...] = ()
    if len(seeds) == 1 and seeds != {0}:
        seed_values = tuple(_mean(column) for column in zip(*(e.seed_values for e in items), strict=True))
    return Estimate(_mean([e.value for e in items]), replicates, seed_values, items[0].confidence)


def run_estimates(runs: Sequence[Mapping]) -> dict[str, Estimate]:
    """{metric: Estimate} of one cell from its evaluation runs, one per training seed (a run JSON each)."""
    if not runs:
        raise ValueError("no evaluation runs given")
    out = {}
    for metric in runs[0]["metrics"]:
        per_seed = []
        for run in runs:
            boot = run.get("bootstrap", {})
            reps = boot.get("replicates", {}).get(metric)
            per_seed.append(
                Estimate(
                    float(run["metrics"][metric]),
                    None if reps is None else np.asarray(reps, dtype=np.float64),
                    confidence=boot.get("confidence", DEFAULT_CONFIDENCE),
                )
            )
        combined = mean_of(per_seed)
        assert combined is not None
        seed_values = tuple(e.value for e in per_seed) if len(per_seed) > 1 else ()
        out[metric] = Estimate(combined.value, combined.replicates, seed_values, combined.confidence)
    return out


def flat_metrics(estimates: Mapping[str, Estimate]) -> dict[str, float]:
    """The metrics.json form of a cell: `<metric>` and, where known, `<metric>_ci_low`, `_ci_high`, `_seed_std`."""
    out: dict[str, float] = {}
    for metric, estimate in estimates.items():
        out[metric] = estimate.value
        bounds = estimate.interval
        if bounds is not None:
            out[f"{metric}_ci_low"], out[f"{metric}_ci_high"] = bounds
        if estimate.seed_std is not None:
            out[f"{metric}_seed_std"] = estimate.seed_std
    return out
