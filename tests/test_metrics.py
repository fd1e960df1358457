"""Tests of miad.metrics: hand-computed cases, agreement with scikit-learn and with the plain MVTec AUPRO algorithm
(benchmarks/bench_metrics.py), 8-connectivity, and input validation."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from scipy import ndimage
from sklearn.metrics import roc_auc_score, roc_curve

from miad import metrics
from miad.metrics import aupro, image_auroc, pixel_auroc, pro_curve, recall_at_fpr, roc_curve_points


def _load_bench() -> ModuleType:
    """Import benchmarks/bench_metrics.py (not a package) for its plain reference implementation."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_metrics.py"
    spec = importlib.util.spec_from_file_location("bench_metrics", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BENCH = _load_bench()
LIMITS = (0.001, 0.01, 0.05, 0.3, 0.5, 1.0)


def _random_case(rng: np.random.Generator, n: int, h: int, w: int, levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Maps quantised to `levels` values (many ties) and blob masks (thresholded smooth noise), a few good images."""
    maps = np.floor(rng.random((n, h, w)) * levels).astype(np.float32) / levels
    smooth = ndimage.gaussian_filter(rng.normal(size=(n, h, w)), sigma=(0, 1.2, 1.2))
    masks = smooth > np.quantile(smooth, 0.85)
    masks[rng.random(n) < 0.3] = False  # some defect-free images
    maps[masks] += rng.integers(0, 3, size=int(masks.sum())) / levels  # anomalous pixels score higher on average
    if not masks.any():
        masks[0, 0, 0] = True
    return maps, masks


# ------------------------------------------------------------------------------------------- image metrics
def test_image_auroc_hand_computed_with_tie() -> None:
    # good {0.1, 0.4}, anomalous {0.4, 0.8}: pairs (anomalous > good) 0.4>0.1, 0.8>0.1, 0.8>0.4 = 3, tie 0.4=0.4
    # counts 1/2, so AUC = 3.5 / 4 = 0.875. ROC: (0,0) (0,.5) (.5,1) (1,1) -> .5*(.5+1)/2 + .5*1 = .875.
    scores, labels = [0.1, 0.4, 0.4, 0.8], [0, 0, 1, 1]
    assert image_auroc(scores, labels) == pytest.approx(0.875, abs=1e-15)
    fpr, tpr, thresholds = roc_curve_points(scores, labels)
    np.testing.assert_array_equal(fpr, [0.0, 0.0, 0.5, 1.0])
    np.testing.assert_array_equal(tpr, [0.0, 0.5, 1.0, 1.0])
    np.testing.assert_array_equal(thresholds, [np.inf, 0.8, 0.4, 0.1])


def test_recall_at_fpr_limit_exactly_attained() -> None:
    # 100 good scores 0..99; anomalous 99.5, 98.5, 50, 10. At t=98.5: TP=2, FP=1 (only 99) -> FPR = 1/100 = 0.01
    # <= 0.01 (attained exactly), TPR = 2/4. At t=98 FPR = 0.02 > 0.01. So recall = 0.5.
    scores = np.r_[np.arange(100.0), 99.5, 98.5, 50.0, 10.0]
    labels = np.r_[np.zeros(100, int), np.ones(4, int)]
    assert recall_at_fpr(scores, labels, 0.01) == 0.5


def test_recall_at_fpr_limit_not_attained() -> None:
    # 150 good scores 0..149; anomalous 149.5, 148.5, 147.5, 10. FPRs reachable: 0, 1/150 = .0067, 2/150 = .0133.
    # max_fpr = 0.01: best point is t=148.5 (FP=1, TP=2) -> 0.5; 147.5 needs FP=2 (.0133). With max_fpr = 0.005
    # only FP=0 is allowed: t=149.5 gives TP=1 -> 0.25. Scores all below the good ones -> only (0, 0) -> 0.0.
    scores = np.r_[np.arange(150.0), 149.5, 148.5, 147.5, 10.0]
    labels = np.r_[np.zeros(150, int), np.ones(4, int)]
    assert recall_at_fpr(scores, labels, 0.01) == 0.5
    assert recall_at_fpr(scores, labels, 0.005) == 0.25
    assert recall_at_fpr([5.0, 6.0, 1.0, 2.0], [0, 0, 1, 1], 0.4) == 0.0
    assert recall_at_fpr([5.0, 6.0, 1.0, 2.0], [0, 0, 1, 1], 1.0) == 1.0


@pytest.mark.parametrize("seed", range(8))
def test_image_metrics_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 400))
    labels = rng.integers(0, 2, n)
    labels[:2] = [0, 1]
    scores = rng.integers(0, int(rng.integers(2, 30)), n) + 0.7 * labels * rng.random(n)  # ties and signal
    scores = np.round(scores, 1)
    assert abs(image_auroc(scores, labels) - roc_auc_score(labels, scores)) < 1e-12
    fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    ours = roc_curve_points(scores, labels)
    np.testing.assert_allclose(ours[0], fpr, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours[1], tpr, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(ours[2][1:], thresholds[1:])
    for max_fpr in (0.001, 0.01, 0.05, 0.2, 1.0):
        assert abs(recall_at_fpr(scores, labels, max_fpr) - np.max(tpr[fpr <= max_fpr])) < 1e-12


def test_image_metrics_accept_bool_and_int_inputs() -> None:
    assert image_auroc(np.array([0, 3, 3, 8]), np.array([False, False, True, True])) == pytest.approx(0.875)


# ------------------------------------------------------------------------------------------- pixel metrics
@pytest.mark.parametrize("seed", range(4))
def test_pixel_auroc_matches_sklearn(seed: int) -> None:
    maps, masks = _random_case(np.random.default_rng(seed), 4, 13, 11, levels=6)
    assert abs(pixel_auroc(maps, masks) - roc_auc_score(masks.ravel(), maps.ravel())) < 1e-12
    # more anomalous than normal pixels takes the other counting branch
    assert abs(pixel_auroc(maps, ~masks) - roc_auc_score(~masks.ravel(), maps.ravel())) < 1e-12


def _two_region_case() -> tuple[np.ndarray, np.ndarray]:
    # region A = (0,0),(0,1) scores .9 and .5 (size 2); region B = (2,3) score .6 (size 1); 13 normal pixels:
    # .7 at (1,1), .5 at (2,1), .3 at (2,2), ten zeros.
    maps = np.array([[[0.9, 0.5, 0, 0], [0, 0.7, 0, 0], [0, 0.5, 0.3, 0.6], [0, 0, 0, 0]]])
    masks = np.zeros((1, 4, 4), dtype=np.uint8)
    masks[0, 0, 0] = masks[0, 0, 1] = masks[0, 2, 3] = 1
    return maps, masks


def test_pro_curve_hand_computed() -> None:
    # t=.9: FP 0, PRO (1/2 + 0)/2 = .25 | t=.7: FP 1 | t=.6: B hit, PRO (1/2 + 1)/2 = .75 | t=.5: FP 2, PRO 1
    # | t=.3: FP 3 | t=0: FP 13.  With the origin first.
    fpr, pro = pro_curve(*_two_region_case())
    np.testing.assert_allclose(fpr, np.array([0, 0, 1, 1, 2, 3, 13]) / 13, rtol=0, atol=1e-15)
    np.testing.assert_allclose(pro, [0, 0.25, 0.25, 0.75, 1, 1, 1], rtol=0, atol=1e-15)


def test_aupro_hand_computed() -> None:
    maps, masks = _two_region_case()
    # limit .3 (between 3/13 = .231 and 1): area = 1/13*.25 + 1/13*(.75+1)/2 + 1/13*1 + (.3 - 3/13)*1
    # = (.25 + .875 + 1 - 3)/13 + .3 = .3 - .875/13, so AUPRO = 1 - .875 / 3.9 = 0.77564102564...
    assert aupro(maps, masks, 0.3) == pytest.approx(1 - 0.875 / 3.9, abs=1e-12)
    # limit .1 lies inside the segment (1/13, .75) -> (2/13, 1): PRO(.1) = .75 + .25 * (.1 - 1/13) * 13 = .825;
    # area = .25/13 + (.1 - 1/13) * (.75 + .825)/2 = (.25 + .3 * .7875)/13 = .48625/13; AUPRO = .48625/1.3.
    assert aupro(maps, masks, 0.1) == pytest.approx(0.48625 / 1.3, abs=1e-12)
    # limit 1/13 ends exactly on a point: area = .25/13, AUPRO = .25.
    assert aupro(maps, masks, 1 / 13) == pytest.approx(0.25, abs=1e-12)
    for limit in (0.3, 0.1, 1 / 13, 1.0):
        assert aupro(maps, masks, limit) == pytest.approx(BENCH.plain_aupro(maps, masks, limit), abs=1e-12)


def test_aupro_perfect_separation_is_exactly_one() -> None:
    # every anomalous pixel outscores every normal one: PRO = 1 from FPR 0 on, area = limit, AUPRO = 1.
    maps = np.zeros((2, 3, 3))
    masks = np.zeros((2, 3, 3), dtype=bool)
    masks[0, 0, :2] = masks[1, 2, 2] = True
    maps[masks] = [5.0, 7.0, 6.0]
    maps[~masks] = np.arange(15) / 15
    for limit in (0.01, 0.3, 0.5, 1.0):
        assert aupro(maps, masks, limit) == 1.0


def test_aupro_divides_by_the_limit_not_the_last_fpr_reached() -> None:
    # 10 normal pixels 0..9, one anomalous pixel scoring 20: PRO = 1 from FPR 0. FPR points: 0, .1, .2, ..., so
    # below the limit .25 the last point is .2. Area to .25 = .25 -> ours 1.0; anomalib divides by the last FPR
    # reached (.2) and would report .25 / .2 = 1.25 > 1.
    maps = np.r_[20.0, np.arange(10.0)].reshape(1, 1, 11)
    masks = np.r_[1, np.zeros(10, int)].reshape(1, 1, 11)
    fpr, pro = pro_curve(maps, masks)
    inside = fpr <= 0.25
    area = float(np.sum(np.diff(fpr[inside]) * (pro[inside][1:] + pro[inside][:-1])) / 2) + (0.25 - 0.2) * 1.0
    assert area / fpr[inside][-1] > 1.2  # anomalib-style normalisation
    assert aupro(maps, masks, 0.25) == 1.0
    # a value below 1 stays below 1 too: anomalous pixel now ties with the best normal pixel.
    maps[0, 0, 0] = 9.0  # t=9: FP 1, PRO 1 -> (0,0) to (.1, 1): area .05, then 1 * .15 -> (.05 + .15)/.25 = .8
    assert aupro(maps, masks, 0.25) == pytest.approx(0.8, abs=1e-12)


def test_eight_connectivity_diagonal_pixels_form_one_region() -> None:
    # (0,0) and (1,1) touch diagonally: ONE region of size 2; (0,3) is a second region of size 1. Only (0,0)
    # scores above the normal pixels (.5): PRO = (1/2 + 0)/2 = .25 up to FPR 1 -> AUPRO(limit 1) = .25.
    # With 4-connectivity there would be 3 regions and PRO = 1/3.
    maps = np.full((1, 3, 4), 0.5)
    masks = np.zeros((1, 3, 4), dtype=bool)
    masks[0, 0, 0] = masks[0, 1, 1] = masks[0, 0, 3] = True
    maps[0, 0, 0], maps[0, 1, 1], maps[0, 0, 3] = 0.9, 0.1, 0.1
    assert aupro(maps, masks, 1.0) == pytest.approx(0.25, abs=1e-15)
    _, pro = pro_curve(maps, masks)
    np.testing.assert_allclose(pro, [0, 0.25, 0.25, 1.0], rtol=0, atol=1e-15)


def test_regions_do_not_connect_across_images() -> None:
    # image 0: one pixel at (0,0) scoring .9; image 1: pixels (0,0),(0,1) scoring .1; normal pixels .5.
    # Per-image regions: sizes 1 and 2, PRO at .9 = (1 + 0)/2 = .5 -> AUPRO(limit 1) = .5 (3-D labelling: 1/3).
    maps = np.full((2, 2, 2), 0.5)
    masks = np.zeros((2, 2, 2), dtype=bool)
    masks[0, 0, 0] = masks[1, 0, 0] = masks[1, 0, 1] = True
    maps[0, 0, 0], maps[1, 0, 0], maps[1, 0, 1] = 0.9, 0.1, 0.1
    assert aupro(maps, masks, 1.0) == pytest.approx(0.5, abs=1e-15)


@pytest.mark.parametrize("seed", range(6))
def test_aupro_matches_plain_reference(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n, h, w = int(rng.integers(1, 7)), int(rng.integers(5, 30)), int(rng.integers(5, 30))
    maps, masks = _random_case(rng, n, h, w, levels=int(rng.integers(2, 12)))
    for limit in (*LIMITS, float(rng.uniform(0.01, 0.99))):
        assert abs(aupro(maps, masks, limit) - BENCH.plain_aupro(maps, masks, limit)) < 1e-9
    fpr, pro = pro_curve(maps, masks)
    ref_fpr, ref_pro = BENCH.plain_pro_curve(maps, masks)
    np.testing.assert_allclose(fpr, ref_fpr, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pro, ref_pro, rtol=0, atol=1e-12)
    assert abs(BENCH.integrate_to_limit(fpr, pro, 0.3) - aupro(maps, masks, 0.3)) < 1e-12


def test_aupro_sampled_bound_and_fallback_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    maps, masks = _random_case(rng, 5, 40, 40, levels=50)
    expected = {limit: BENCH.plain_aupro(maps, masks, limit) for limit in LIMITS}
    monkeypatch.setattr(metrics, "_SAMPLE_SIZE", 256)  # the sampled-bound branch, in several blocks
    monkeypatch.setattr(metrics, "_CHUNK_PIXELS", 999)
    for limit, value in expected.items():
        assert abs(aupro(maps, masks, limit) - value) < 1e-9
    monkeypatch.setattr(metrics, "_SAMPLE_MARGIN", -0.5)  # a bound that is too high: the exact count check falls back
    for limit, value in expected.items():
        assert abs(aupro(maps, masks, limit) - value) < 1e-9


def test_aupro_dtypes_agree() -> None:
    maps, masks = _random_case(np.random.default_rng(3), 3, 16, 16, levels=8)
    as_int = np.rint(maps * 8).astype(np.int64)
    expected = aupro(as_int.astype(np.float64), masks)
    assert aupro(as_int, masks.astype(np.uint8)) == expected
    assert aupro(as_int.astype(np.float32), masks.astype(np.int32) * 255) == expected


# ---------------------------------------------------------------------------------------------- validation
IMAGE_FUNCS = (image_auroc, recall_at_fpr, roc_curve_points)
PIXEL_FUNCS = (pixel_auroc, aupro, pro_curve)


@pytest.mark.parametrize("func", IMAGE_FUNCS)
@pytest.mark.parametrize(
    ("scores", "labels", "match"),
    [
        ([0.1, np.nan, 0.3], [0, 1, 1], "scores contains NaN or inf"),
        ([0.1, np.inf, 0.3], [0, 1, 1], "scores contains NaN or inf"),
        ([0.1, 0.2, 0.3], [0, 1], r"same shape, got \(3,\) and \(2,\)"),
        ([0.1, 0.2, 0.3], [0, 1, 2], "labels must contain only 0"),
        ([0.1, 0.2, 0.3], [0, 1, 0.5], "labels must contain only 0"),
        ([0.1, 0.2, 0.3], [0, 0, 0], "no anomalous sample"),
        ([0.1, 0.2, 0.3], [1, 1, 1], "no good sample"),
        ([], [], "empty"),
        ([[0.1, 0.2]], [[0, 1]], "scores must be 1-D"),
        ([0.1, 0.2], [[0, 1]], "labels must be 1-D"),
        (["a", "b"], [0, 1], "scores must hold real numbers"),
    ],
)
def test_image_metric_validation(func, scores, labels, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        func(scores, labels)


@pytest.mark.parametrize("max_fpr", [0.0, -0.1, 1.5, math.nan, "x"])
def test_max_fpr_validation(max_fpr) -> None:
    with pytest.raises(ValueError, match="max_fpr must be"):
        recall_at_fpr([0.1, 0.9], [0, 1], max_fpr)


def _good_pixel_inputs() -> tuple[np.ndarray, np.ndarray]:
    maps = np.arange(18, dtype=np.float32).reshape(2, 3, 3)
    masks = np.zeros((2, 3, 3), dtype=bool)
    masks[1, 1, 1] = True
    return maps, masks


@pytest.mark.parametrize("func", PIXEL_FUNCS)
def test_pixel_metric_validation(func) -> None:
    maps, masks = _good_pixel_inputs()
    for bad in (np.nan, np.inf, -np.inf):
        broken = maps.copy()
        broken[0, 2, 2] = bad
        with pytest.raises(ValueError, match="anomaly_maps contains NaN or inf"):
            func(broken, masks)
    with pytest.raises(ValueError, match=r"same shape, got \(2, 3, 3\) and \(2, 3, 4\)"):
        func(maps, np.zeros((2, 3, 4), dtype=bool))
    with pytest.raises(ValueError, match=r"anomaly_maps must be 3-D \(N, H, W\), got shape \(3, 3\)"):
        func(maps[0], masks[0])
    with pytest.raises(ValueError, match="masks must be 3-D"):
        func(maps, masks[0])
    with pytest.raises(ValueError, match="masks contain no anomalous pixel"):
        func(maps, np.zeros_like(masks))
    with pytest.raises(ValueError, match="masks contain no normal pixel"):
        func(maps, np.ones_like(masks))
    with pytest.raises(ValueError, match="empty"):
        func(np.zeros((0, 3, 3)), np.zeros((0, 3, 3), dtype=bool))
    with pytest.raises(ValueError, match="anomaly_maps must hold real numbers"):
        func(maps.astype(np.complex64), masks)
    assert func(maps, masks) is not None  # the unbroken inputs are accepted


@pytest.mark.parametrize("fpr_limit", [0.0, -0.3, 1.0001, math.nan, None])
def test_fpr_limit_validation(fpr_limit) -> None:
    maps, masks = _good_pixel_inputs()
    with pytest.raises(ValueError, match="fpr_limit must be"):
        aupro(maps, masks, fpr_limit)
