"""Estimates from runs (seeds averaged, replicates paired) and the fidelity numbers: Spearman's rho with its
bootstrap interval, the plot, and their determinism."""

from __future__ import annotations

import numpy as np
import pytest

from miad.reporting.estimates import Estimate, flat_metrics, mean_of, run_estimates
from miad.reporting.fidelity import fidelity, spearman_rows
from miad.reporting.figures import fidelity_plot
from miad.reporting.tables import main_table, paper_results


def run(value: float, replicates: list[float]) -> dict:
    return {
        "metrics": {"image_auroc": value, "pixel_auroc": 0.5},
        "bootstrap": {"confidence": 0.9, "replicates": {"image_auroc": replicates}},
    }


def test_runs_of_several_seeds_average_and_keep_their_spread():
    one = run_estimates([run(0.6, [0.5, 0.6, 0.7])])
    assert one["image_auroc"].value == 0.6 and one["image_auroc"].seed_std is None
    assert one["pixel_auroc"].interval is None  # no replicates: no interval
    two = run_estimates([run(0.6, [0.5, 0.6, 0.7]), run(0.8, [0.7, 0.8, 0.9])])["image_auroc"]
    assert two.value == pytest.approx(0.7) and two.seed_values == (0.6, 0.8)
    assert two.seed_std == pytest.approx(np.std([0.6, 0.8], ddof=1))
    assert np.allclose(two.replicates, [0.6, 0.7, 0.8]) and two.confidence == 0.9
    flat = flat_metrics({"image_auroc": two})
    assert set(flat) == {"image_auroc", "image_auroc_ci_low", "image_auroc_ci_high", "image_auroc_seed_std"}
    assert flat["image_auroc_ci_low"] == pytest.approx(0.61) and flat["image_auroc_ci_high"] == pytest.approx(0.79)


def test_a_mean_is_missing_while_a_part_is():
    assert mean_of([Estimate(0.5), None]) is None
    assert mean_of([]) is None
    mixed = mean_of([Estimate(0.5, np.array([0.4, 0.6])), Estimate(0.7)])
    assert mixed.value == pytest.approx(0.6) and mixed.interval is None  # no replicates on one side


def estimates_like_paper(noise: float, seed: int = 0) -> dict:
    """Table 3 results: the paper's AUROC plus noise, each with replicates spread around it."""
    rng = np.random.default_rng(seed)
    paper = paper_results()["table3"]
    results: dict = {}
    for scenario, row in paper.items():
        if scenario == "mean":
            continue
        for method, (auroc, _recall) in row.items():
            value = float(np.clip(auroc + rng.normal(0, noise), 0, 1))
            replicates = np.clip(value + rng.normal(0, 0.05, 400), 0, 1)
            results.setdefault(f"main/{scenario}", {})[method] = {"image_auroc": Estimate(value, replicates)}
    return results


def test_fidelity_of_a_faithful_and_of_a_noisy_table(tmp_path):
    faithful = fidelity(
        main_table("table3", estimates_like_paper(0.0), ("image_auroc", "recall_at_fpr")), "image_auroc", 1, title="t"
    )
    assert len(faithful.cells) == 42 and faithful.rho > 0.99 and faithful.mean_abs_diff < 1e-9
    assert faithful.inside == 42 and faithful.rho_interval[0] > 0.7
    noisy_table = main_table("table3", estimates_like_paper(0.3), ("image_auroc", "recall_at_fpr"))
    noisy = fidelity(noisy_table, "image_auroc", 1, title="t")
    assert noisy.rho < faithful.rho and noisy.inside < 42
    low, high = noisy.rho_interval
    assert low < noisy.rho < high
    again = fidelity(noisy_table, "image_auroc", 1, title="t")
    assert again.rho_interval == noisy.rho_interval  # seeded: the same numbers on a rerun
    assert fidelity(noisy_table, "image_auroc", 2, title="t").rho_interval != noisy.rho_interval
    numbers = noisy.metrics()
    assert numbers["cells"] == 42 and numbers["spearman_rho_ci_low"] == low
    diff_low, diff_high = noisy.mean_abs_diff_interval
    assert diff_low < noisy.mean_abs_diff < diff_high and diff_high - diff_low < 0.15
    assert (numbers["mean_abs_diff_ci_low"], numbers["mean_abs_diff_ci_high"]) == (diff_low, diff_high)
    assert again.mean_abs_diff_interval == noisy.mean_abs_diff_interval
    assert 0.0 < faithful.mean_abs_diff_interval[0] < faithful.mean_abs_diff_interval[1] < 0.06  # noise raises |d|
    fidelity_plot([faithful, noisy], tmp_path / "fidelity.png")
    assert (tmp_path / "fidelity.png").stat().st_size > 10_000


def test_spearman_matches_scipy_and_too_few_cells_give_none():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(3)
    x, y = rng.random(30), np.round(rng.random(30), 1)  # ties on one side
    assert spearman_rows(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
    few = {"main/electrical_insulator": {"rd": {"image_auroc": Estimate(0.5)}}}
    assert fidelity(main_table("table3", few, ("image_auroc", "recall_at_fpr")), "image_auroc", 1, title="t") is None


def test_fidelity_plot_survives_an_interval_that_misses_its_estimate(tmp_path):
    """Found by the paper-profile rehearsal: a bootstrap interval just beside its point estimate crashed the plot."""
    from miad.reporting.fidelity import Fidelity

    ours = np.array([0.5, 0.7, 0.9])
    panel = Fidelity(
        name="table3_aupro",
        title="t",
        cells=(("a", "rd"), ("b", "rd"), ("c", "patchcore")),
        paper=np.array([0.4, 0.6, 0.8]),
        ours=ours,
        low=ours + 1e-5,  # the whole interval above the estimate
        high=ours + 2e-5,
        rho=1.0,
        rho_interval=None,
        confidence=0.95,
    )
    fidelity_plot([panel], tmp_path / "fidelity.png")
    assert (tmp_path / "fidelity.png").stat().st_size > 10_000
