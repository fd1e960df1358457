"""What pairing buys: the interval of each factor's AUROC effect (a variant minus the baseline, per ablation method
and scenario) with the variants resampled jointly, against the same replicates resampled independently per variant.

The findings profile is sized by these widths (the target is a paired half-width of at most 0.05); `make bench`
reports them (benchmarks/bench_pairing.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from miad.bootstrap import interval
from miad.catalog import ABLATION_SCENARIOS, VARIANT_FACTORS
from miad.claims.evidence import Effect, Evidence

AUROC = "image_auroc"
EFFECT_VARIANTS = tuple(v for v in VARIANT_FACTORS if v != "baseline")  # each against the baseline; main = all three


@dataclass(frozen=True)
class FactorEffect:
    """One method's AUROC change from the baseline to `variant` on `scenario`, paired and unpaired."""

    scenario: str
    method: str
    variant: str
    point: float
    paired: tuple[float, float] | None  # the interval as the evidence pairs it (jointly where the runs share a plan)
    unpaired: tuple[float, float] | None  # the same replicates, each variant resampled on its own
    paired_note: str

    @staticmethod
    def half_width(bounds: tuple[float, float] | None) -> float | None:
        return None if bounds is None else (bounds[1] - bounds[0]) / 2


def unpaired(evidence: Evidence) -> Evidence:
    """The same cells with every dataset its own group: variant differences combine independent resamples."""
    cells = {key: dataclasses.replace(cell, group=f"dataset:{key[0]}") for key, cell in evidence.cells.items()}
    return Evidence(cells, profile=evidence.profile, train_images=evidence.train_images, confidence=evidence.confidence)


def factor_effects(evidence: Evidence, confidence: float | None = None) -> list[FactorEffect]:
    """Every (scenario, method, variant) with both cells: variant AUROC minus baseline AUROC, both ways."""
    level = evidence.confidence if confidence is None else confidence
    independent = unpaired(evidence)
    methods = sorted({m for d, m, _ in evidence.cells if d.split("/")[0] == "baseline"})
    found = []
    for scenario in ABLATION_SCENARIOS:
        for method in methods:
            for variant in EFFECT_VARIANTS:
                after, before = (f"{variant}/{scenario}", method, AUROC), (f"baseline/{scenario}", method, AUROC)
                terms = ((1.0, after), (-1.0, before))
                joint, apart = evidence.effect(terms), independent.effect(terms)
                if joint is None or apart is None:
                    continue
                found.append(
                    FactorEffect(
                        scenario, method, variant, joint.point, _bounds(joint, level), _bounds(apart, level), joint.note
                    )
                )
    return found


def _bounds(effect: Effect, confidence: float) -> tuple[float, float] | None:
    if effect.replicates is None:
        return None
    low, high = interval(np.asarray(effect.replicates), confidence)
    return float(low), float(high)
