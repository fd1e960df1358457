"""Bootstrap intervals: hand-made cases with known answers, agreement with miad.metrics resample by resample,
and the same bits on a rerun and under another CPU's dispatch."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from scipy.stats import binom

from miad import bootstrap, metrics
from miad.bootstrap import (
    Bootstrap,
    aupro_replicates,
    auroc_replicates,
    grid_aupro,
    grid_pixel_auroc,
    interval,
    pixel_auroc_replicates,
    recall_replicates,
)

LABELS = np.r_[np.zeros(20, dtype=np.int64), np.ones(20, dtype=np.int64)]


def noisy_case(seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores with ties, and 32x32 maps where each defective image has one or two brighter rectangles."""
    rng = np.random.default_rng(seed)
    scores = np.round(rng.normal(size=LABELS.size) + 0.6 * LABELS, 1)
    maps = rng.random((LABELS.size, 32, 32)).astype(np.float32)
    masks = np.zeros(maps.shape, dtype=bool)
    for i in np.flatnonzero(LABELS):
        for _ in range(1 + i % 2):
            r, c = rng.integers(0, 24, 2)
            masks[i, r : r + 6, c : c + 5] = True
        maps[i][masks[i]] += np.float32(0.4 * rng.random())
    return scores, maps, masks


def test_resamples_keep_the_class_sizes_and_follow_the_seed():
    boot = Bootstrap.draw(LABELS, 500, seed=7)
    assert boot.indices.shape == (500, 40)
    assert (LABELS[boot.indices[:, :20]] == 0).all() and (LABELS[boot.indices[:, 20:]] == 1).all()
    assert np.array_equal(boot.indices, Bootstrap.draw(LABELS, 500, seed=7).indices)
    assert not np.array_equal(boot.indices, Bootstrap.draw(LABELS, 500, seed=8).indices)
    counts = np.concatenate(list(boot.counts(40)))
    assert counts.shape == (500, 40) and (counts.sum(axis=1) == 40).all()


def test_perfect_separation_gives_one_one():
    scores = LABELS + np.linspace(0.0, 0.5, LABELS.size)
    maps = np.zeros((40, 16, 16), dtype=np.float32)
    masks = np.zeros(maps.shape, dtype=bool)
    masks[20:, 4:8, 4:8] = True
    maps[masks] = 1.0
    boot = Bootstrap.draw(LABELS, 1000, seed=3)
    assert interval(auroc_replicates(scores, LABELS, boot)) == (1.0, 1.0)
    assert interval(recall_replicates(scores, LABELS, boot, 0.01)) == (1.0, 1.0)
    assert interval(aupro_replicates(maps, masks, boot, 0.3)[0]) == (1.0, 1.0)
    assert interval(pixel_auroc_replicates(maps, masks, boot)[0]) == (1.0, 1.0)


def test_a_binomial_case_matches_the_binomial_quantiles():
    # 50 defective images, 20 of them above every good one and 30 below: on a resample both the AUROC and the
    # recall at 0% FPR are the drawn share of the 20, a Binomial(50, 0.4) / 50.
    labels = np.r_[np.zeros(50, dtype=np.int64), np.ones(50, dtype=np.int64)]
    scores = np.r_[np.linspace(1.0, 2.0, 50), np.linspace(3.0, 4.0, 20), np.linspace(-1.0, 0.0, 30)]
    assert metrics.image_auroc(scores, labels) == pytest.approx(0.4)
    boot = Bootstrap.draw(labels, 4000, seed=11)
    auroc = auroc_replicates(scores, labels, boot)
    recall = recall_replicates(scores, labels, boot, 0.01)
    assert np.array_equal(auroc, recall)
    low, high = interval(recall)
    assert low == pytest.approx(binom.ppf(0.025, 50, 0.4) / 50, abs=0.021)
    assert high == pytest.approx(binom.ppf(0.975, 50, 0.4) / 50, abs=0.021)
    assert recall.mean() == pytest.approx(0.4, abs=0.005)
    assert recall.std() == pytest.approx(np.sqrt(0.4 * 0.6 / 50), rel=0.05)


def test_replicates_are_the_metrics_of_the_resampled_images():
    scores, maps, masks = noisy_case()
    boot = Bootstrap.draw(LABELS, 300, seed=5)
    auroc = auroc_replicates(scores, LABELS, boot)
    recall = recall_replicates(scores, LABELS, boot, 0.1)
    aupro, full = aupro_replicates(maps, masks, boot, 0.3)
    for b in (0, 1, 150, 299):
        idx = boot.indices[b]
        assert auroc[b] == pytest.approx(metrics.image_auroc(scores[idx], LABELS[idx]), abs=1e-12)
        assert recall[b] == metrics.recall_at_fpr(scores[idx], LABELS[idx], max_fpr=0.1)
        assert aupro[b] == pytest.approx(metrics.aupro(maps[idx], masks[idx], 0.3), abs=0.005)  # the grid
    assert full == pytest.approx(metrics.aupro(maps, masks, 0.3), abs=0.005)
    assert grid_aupro(maps, masks, 0.3) == full
    low, high = interval(auroc)
    assert low < metrics.image_auroc(scores, LABELS) < high and high - low < 0.6


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="both good and defective"):
        Bootstrap.draw(np.zeros(5, dtype=np.int64), 100, seed=0)
    with pytest.raises(ValueError, match="0 \\(good\\) and 1"):
        Bootstrap.draw(np.array([0, 2]), 100, seed=0)
    with pytest.raises(ValueError, match="finite"):
        interval(np.array([0.5, np.nan]))
    with pytest.raises(ValueError, match="confidence"):
        interval(np.array([0.5]), confidence=1.0)
    boot = Bootstrap.draw(LABELS, 100, seed=0)
    with pytest.raises(ValueError, match="NaN or inf"):
        auroc_replicates(np.full(40, np.nan), LABELS, boot)
    with pytest.raises(ValueError, match="of one shape"):
        aupro_replicates(np.zeros((40, 4, 4)), np.zeros((40, 4, 5)), boot, 0.3)
    _, maps, masks = noisy_case()
    maps[3, 0, 0] = np.nan
    with pytest.raises(ValueError, match="map 3 contains NaN"):
        pixel_auroc_replicates(maps, masks, boot)
    with pytest.raises(ValueError, match="both anomalous and normal"):
        pixel_auroc_replicates(maps, np.zeros(maps.shape, dtype=bool), boot)


DIGEST_SCRIPT = """
import hashlib, sys
sys.path.insert(0, {tests!r})
from test_bootstrap import LABELS, noisy_case
from miad.bootstrap import Bootstrap, aupro_replicates, auroc_replicates, pixel_auroc_replicates, recall_replicates
scores, maps, masks = noisy_case()
boot = Bootstrap.draw(LABELS, 700, seed=9)
parts = [auroc_replicates(scores, LABELS, boot), recall_replicates(scores, LABELS, boot, 0.05),
         aupro_replicates(maps, masks, boot, 0.3)[0], pixel_auroc_replicates(maps, masks, boot)[0]]
print(hashlib.sha256(b"".join(p.tobytes() for p in parts)).hexdigest())
"""

CPU_SETTINGS = {  # as this machine dispatches; NumPy without AVX-512 / without AVX2 and FMA3; an older OpenBLAS core
    "native": {},
    "no-avx512": {"NPY_DISABLE_CPU_FEATURES": "AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL"},
    "no-avx2": {
        "NPY_DISABLE_CPU_FEATURES": "AVX2 FMA3 AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL",
        "OPENBLAS_CORETYPE": "Sandybridge",
    },
}


def test_the_same_bits_on_a_rerun_and_under_other_cpu_dispatch():
    tests = os.path.dirname(__file__)
    digests = {}
    for name, knobs in CPU_SETTINGS.items():
        env = {**os.environ, **knobs}
        if name != "native" and "OPENBLAS_CORETYPE" in os.environ:
            env["OPENBLAS_CORETYPE"] = os.environ["OPENBLAS_CORETYPE"]  # a machine that needs its own keeps it
        proc = subprocess.run(
            [sys.executable, "-c", DIGEST_SCRIPT.format(tests=tests)], env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        digests[name] = proc.stdout.strip()
    scores, maps, masks = noisy_case()
    boot = Bootstrap.draw(LABELS, 700, seed=9)
    here = [
        auroc_replicates(scores, LABELS, boot),
        recall_replicates(scores, LABELS, boot, 0.05),
        aupro_replicates(maps, masks, boot, 0.3)[0],
        pixel_auroc_replicates(maps, masks, boot)[0],
    ]
    digests["in-process"] = hashlib.sha256(b"".join(p.tobytes() for p in here)).hexdigest()
    assert len(set(digests.values())) == 1, digests


# ------------------------------------------------------------------------------------------------ pixel AUROC
def box_bound(maps: np.ndarray, masks: np.ndarray, drawn: np.ndarray) -> float:
    """Half the summed area of the boxes between consecutive grid points of one resample's ROC: how far the grid's
    trapezoid can lie from the exact AUROC (the exact curve runs inside those boxes)."""
    counts = bootstrap._roc_counts(maps, masks, bootstrap._roc_grid(maps, masks))
    held = drawn[counts.holders]
    fp = np.r_[0.0, drawn @ counts.normal_hits, drawn @ counts.normal]
    tp = np.r_[0.0, held @ counts.anomalous_hits, held @ counts.anomalous]
    return float(np.sum(np.diff(fp) * np.diff(tp)) / (2.0 * fp[-1] * tp[-1]))


def test_pixel_auroc_replicates_are_the_metric_of_the_resampled_images_within_the_grid_error():
    _, maps, masks = noisy_case()
    boot = Bootstrap.draw(LABELS, 300, seed=5)
    replicates, full = pixel_auroc_replicates(maps, masks, boot)
    assert bootstrap._roc_grid(maps, masks).size > 500  # 41,000 distinct scores: a real grid, not every score
    errors = []
    for b in (0, 1, 2, 3, 77, 150, 151, 298, 299):
        idx = boot.indices[b]
        exact = metrics.pixel_auroc(maps[idx], masks[idx])  # brute force: the metric of the resampled images
        bound = box_bound(maps, masks, np.bincount(idx, minlength=LABELS.size).astype(np.float64))
        assert abs(replicates[b] - exact) <= bound + 1e-15 and bound < 1e-3  # within the boxes, as documented
        errors.append(abs(replicates[b] - exact))
    assert 0 < max(errors) < 5e-4  # the docstring's order of magnitude at this size (noise: a std of 0.02)
    assert abs(full - metrics.pixel_auroc(maps, masks)) < 5e-4 and grid_pixel_auroc(maps, masks) == full
    low, high = interval(replicates)
    assert low < metrics.pixel_auroc(maps, masks) < high and 0.02 < high - low < 0.2


def test_pixel_auroc_replicates_are_exact_where_the_grid_holds_every_score():
    _, maps, masks = noisy_case()
    maps = np.round(maps * 8) / 8  # 13 distinct scores, many ties across the classes (counted 1/2)
    boot = Bootstrap.draw(LABELS, 200, seed=6)
    replicates, full = pixel_auroc_replicates(maps, masks, boot)
    for b in range(0, 200, 9):
        idx = boot.indices[b]
        assert replicates[b] == metrics.pixel_auroc(maps[idx], masks[idx])  # bit for bit
    assert full == metrics.pixel_auroc(maps, masks)


def test_pixel_auroc_replicates_have_the_same_bits_on_a_rerun_and_in_any_chunking(monkeypatch):
    _, maps, masks = noisy_case(seed=2)
    boot = Bootstrap.draw(LABELS, 300, seed=8)
    first, full = pixel_auroc_replicates(maps, masks, boot)
    again, full_again = pixel_auroc_replicates(maps.copy(), masks.copy(), boot)
    assert first.tobytes() == again.tobytes() and full == full_again
    monkeypatch.setattr(bootstrap, "CHUNK", 7)  # resamples in blocks of 7 instead of 128
    assert sum(1 for _ in boot.chunks()) == 43
    assert pixel_auroc_replicates(maps, masks, boot)[0].tobytes() == first.tobytes()
    rows = pixel_auroc_replicates(maps, masks, Bootstrap(boot.indices[[5, 250]]))[0]  # a resample alone
    assert rows.tobytes() == first[[5, 250]].tobytes()


def test_pixel_auroc_bootstrap_keeps_per_image_tables_not_per_pixel_arrays():
    n, size, resamples = 64, 96, 2000  # one (resamples x pixels) float64 array would take 9.4 GB
    rng = np.random.default_rng(4)
    maps = rng.random((n, size, size), dtype=np.float32)
    masks = np.zeros(maps.shape, dtype=bool)
    masks[1::2, 30:50, 40:60] = True
    maps[masks] += 0.3
    labels = np.arange(n) % 2
    boot = Bootstrap.draw(labels, resamples, seed=1)
    thresholds = bootstrap._roc_grid(maps, masks)
    counts = bootstrap._roc_counts(maps, masks, thresholds)
    assert thresholds.size <= 2 * bootstrap.ROC_GRID_POINTS  # 590,000 distinct scores, at most 1000 thresholds
    assert counts.normal_hits.shape == (n, thresholds.size) and counts.anomalous_hits.shape == (n // 2, thresholds.size)
    tracemalloc.start()
    try:
        replicates, _ = pixel_auroc_replicates(maps, masks, boot)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert replicates.shape == (resamples,)
    assert peak < 4 * maps.nbytes  # 2.4 MB of maps: a sorted sample, tables and one chunk's products, no more


def test_every_reported_metric_gets_an_interval():
    from miad.config import load_params
    from miad.stages.evaluate import compute_intervals, compute_metrics
    from tests.project_copy import REPO

    params = load_params(REPO / "params.yaml", "smoke")
    scores, maps, masks = noisy_case()
    reported = compute_metrics(params, scores, LABELS, maps, masks)
    boot = compute_intervals(params, 3, scores, LABELS, maps, masks)
    assert set(boot["intervals"]) == set(boot["replicates"]) == set(reported)
    assert len(boot["replicates"]["pixel_auroc"]) == params.active.evaluate.bootstrap_resamples
    assert boot["pixel_auroc_grid_value"] == pytest.approx(reported["pixel_auroc"], abs=5e-4)
    low, high = boot["intervals"]["pixel_auroc"]
    assert low < reported["pixel_auroc"] < high
