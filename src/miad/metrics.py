"""Evaluation metrics of the MIAD benchmark: image AUROC, recall at a fixed FPR, pixel AUROC and AUPRO.

Pure numpy (plus scipy.ndimage for connected components). The image metrics follow scikit-learn's ROC conventions
exactly (one operating point per distinct score, ties counted 1/2 in the AUC). AUPRO follows MVTec AD's definition:
8-connected ground-truth regions, the exact PRO/FPR curve over every distinct score, the trapezoid up to the FPR
limit with linear interpolation at the limit, divided by the limit (so the value never exceeds 1).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

__all__ = ["aupro", "image_auroc", "pixel_auroc", "pro_curve", "recall_at_fpr", "roc_curve_points"]

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)
_CHUNK_PIXELS = 1 << 22  # pixels per block in streaming passes; bounds the temporaries to a few MB
_SAMPLE_SIZE = 1 << 20  # normal-pixel sample used to bracket the threshold where the FPR crosses the limit
_SAMPLE_MARGIN = 0.005  # extra tail fraction kept beyond the sampled estimate, so the exact check rarely fails


# ----------------------------------------------------------------------------------------------------- validation
def _check_fraction(value: float, name: str) -> float:
    """Return `value` as a float in (0, 1], or raise ValueError naming the argument."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in (0, 1], got {value!r}") from None
    if not 0.0 < x <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")
    return x


def _as_real(values: ArrayLike, name: str) -> np.ndarray:
    """Array of real scores; bool/int become float64 (exact), floats keep their dtype (no rounding, no copy)."""
    arr = np.asarray(values)
    if arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.float64)
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr


def _check_finite(arr: np.ndarray, name: str) -> None:
    """Raise if `arr` holds NaN or inf; scans in blocks so no full-size boolean temporary is made."""
    flat = arr.reshape(-1)
    for start in range(0, flat.size, _CHUNK_PIXELS):
        if not np.isfinite(flat[start : start + _CHUNK_PIXELS]).all():
            raise ValueError(f"{name} contains NaN or inf")


def _image_inputs(scores: ArrayLike, labels: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Validate image-level inputs; return float64 scores and a boolean 'anomalous' vector."""
    s = _as_real(scores, "scores")
    y = np.asarray(labels)
    if s.ndim != 1:
        raise ValueError(f"scores must be 1-D, got shape {s.shape}")
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {y.shape}")
    if s.shape != y.shape:
        raise ValueError(f"scores and labels must have the same shape, got {s.shape} and {y.shape}")
    if s.size == 0:
        raise ValueError("scores and labels are empty")
    _check_finite(s, "scores")
    if y.dtype.kind not in "biuf" or not np.isin(y, (0, 1)).all():
        raise ValueError("labels must contain only 0 (good) and 1 (anomalous)")
    positive = y == 1
    if not positive.any():
        raise ValueError("labels contain no anomalous sample (label 1)")
    if positive.all():
        raise ValueError("labels contain no good sample (label 0)")
    return s.astype(np.float64, copy=False), positive


def _pixel_inputs(anomaly_maps: ArrayLike, masks: ArrayLike) -> tuple[np.ndarray, NDArray[np.bool_]]:
    """Validate (N, H, W) maps and masks; return C-contiguous maps and the boolean 'anomalous pixel' array."""
    maps = _as_real(anomaly_maps, "anomaly_maps")
    m = np.asarray(masks)
    if m.dtype.kind not in "biuf":
        raise ValueError(f"masks must be boolean or numeric, got dtype {m.dtype}")
    if maps.ndim != 3:
        raise ValueError(f"anomaly_maps must be 3-D (N, H, W), got shape {maps.shape}")
    if m.ndim != 3:
        raise ValueError(f"masks must be 3-D (N, H, W), got shape {m.shape}")
    if maps.shape != m.shape:
        raise ValueError(f"anomaly_maps and masks must have the same shape, got {maps.shape} and {m.shape}")
    if maps.size == 0:
        raise ValueError(f"anomaly_maps and masks are empty, got shape {maps.shape}")
    maps = np.ascontiguousarray(maps)
    _check_finite(maps, "anomaly_maps")
    positive = np.ascontiguousarray(m > 0)
    n_positive = np.count_nonzero(positive)
    if n_positive == 0:
        raise ValueError("masks contain no anomalous pixel (mask > 0)")
    if n_positive == positive.size:
        raise ValueError("masks contain no normal pixel (mask <= 0)")
    return maps, positive


# ------------------------------------------------------------------------------------------------ image metrics
def roc_curve_points(scores: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve (fpr, tpr, thresholds) with one point per distinct score, like scikit-learn's
    `roc_curve(labels, scores, drop_intermediate=False)`: descending thresholds, predict anomalous if
    score >= threshold, and a first point (0, 0) at threshold +inf."""
    s, y = _image_inputs(scores, labels)
    order = np.argsort(s, kind="mergesort")[::-1]
    s_desc, y_desc = s[order], y[order]
    last_of_run = np.r_[np.flatnonzero(np.diff(s_desc)), s_desc.size - 1]  # last index of each run of equal scores
    tps = np.cumsum(y_desc, dtype=np.int64)[last_of_run]
    fps = 1 + last_of_run - tps
    tpr = np.r_[0, tps] / tps[-1]
    fpr = np.r_[0, fps] / fps[-1]
    return fpr, tpr, np.r_[np.inf, s_desc[last_of_run]]


def image_auroc(scores: ArrayLike, labels: ArrayLike) -> float:
    """ROC AUC of image scores (label 1 = anomalous): trapezoid over the ROC curve, so ties count 1/2."""
    fpr, tpr, _ = roc_curve_points(scores, labels)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1])) / 2.0)


def recall_at_fpr(scores: ArrayLike, labels: ArrayLike, max_fpr: float = 0.01) -> float:
    """Highest TPR among the ROC operating points whose FPR <= max_fpr, the threshold being chosen on the test
    set itself (the paper's rule); the all-negative point (0, 0) is always admissible."""
    limit = _check_fraction(max_fpr, "max_fpr")
    fpr, tpr, _ = roc_curve_points(scores, labels)
    return float(np.max(tpr[fpr <= limit]))


# ------------------------------------------------------------------------------------------------ pixel metrics
def pixel_auroc(anomaly_maps: ArrayLike, masks: ArrayLike) -> float:
    """ROC AUC over all pixels of all maps (mask > 0 is anomalous), as the Mann-Whitney U with ties counted 1/2.

    Counts are exact integers (one division at the end); equals scikit-learn's roc_auc_score on the flattened
    pixels up to its floating-point summation error."""
    maps, positive = _pixel_inputs(anomaly_maps, masks)
    flat, flat_pos = maps.reshape(-1), positive.reshape(-1)
    pos_scores = np.sort(flat[flat_pos])
    neg_scores = np.sort(flat[~flat_pos])
    n_pos, n_neg = pos_scores.size, neg_scores.size
    if n_pos <= n_neg:  # 2U = sum over positives of (#neg < p) + (#neg <= p)
        twice_u = np.sum(np.searchsorted(neg_scores, pos_scores, side="left"), dtype=np.int64)
        twice_u += np.sum(np.searchsorted(neg_scores, pos_scores, side="right"), dtype=np.int64)
    else:  # 2U = sum over negatives of 2 * #pos - (#pos < n) - (#pos <= n)
        twice_u = 2 * n_pos * n_neg - np.sum(np.searchsorted(pos_scores, neg_scores, side="left"), dtype=np.int64)
        twice_u -= np.sum(np.searchsorted(pos_scores, neg_scores, side="right"), dtype=np.int64)
    return float(twice_u / (2.0 * n_pos * n_neg))


def _regions(maps: np.ndarray, positive: NDArray[np.bool_]) -> tuple[np.ndarray, NDArray[np.int64], np.ndarray]:
    """Scores and region ids of the anomalous pixels, and the size of each region.

    Regions are the 8-connected components of each image's mask, numbered consecutively over all images; labelling
    one image at a time keeps the label buffer at one image instead of N * H * W int32."""
    scores, ids = [], []
    n_regions = 0
    for i in np.flatnonzero(positive.reshape(len(positive), -1).any(axis=1)):
        labels, count = ndimage.label(positive[i], structure=_EIGHT_CONNECTED)
        scores.append(maps[i][positive[i]])
        ids.append(labels[positive[i]].astype(np.int64) + (n_regions - 1))
        n_regions += count
    region_ids = np.concatenate(ids)
    return np.concatenate(scores), region_ids, np.bincount(region_ids, minlength=n_regions)


def _normal_scores_at_least(maps: np.ndarray, positive: NDArray[np.bool_], bound: float | None) -> np.ndarray:
    """Scores of the normal pixels that are >= bound (all of them if bound is None), sorted ascending."""
    flat, flat_pos = maps.reshape(-1), positive.reshape(-1)
    parts = []
    for start in range(0, flat.size, _CHUNK_PIXELS):
        block = flat[start : start + _CHUNK_PIXELS]
        keep = ~flat_pos[start : start + _CHUNK_PIXELS]
        if bound is not None:
            keep &= block >= bound
        parts.append(block[keep])
    normal = np.concatenate(parts)
    normal.sort()
    return normal


def _tail_bound(maps: np.ndarray, positive: NDArray[np.bool_], fraction: float) -> float | None:
    """A score such that, very likely, more than `fraction` of the normal pixels score at or above it.

    Estimated on a fixed-seed sample of the pixels with a safety margin; the caller checks the count exactly and
    falls back to every normal pixel, so the estimate only affects speed, never the result."""
    frac = fraction + _SAMPLE_MARGIN + 6.0 * math.sqrt(fraction * (1.0 - fraction) / _SAMPLE_SIZE)
    if frac >= 1.0:
        return None
    flat, flat_pos = maps.reshape(-1), positive.reshape(-1)
    if flat.size <= _SAMPLE_SIZE:
        sample = flat[~flat_pos]
    else:
        idx = np.random.default_rng(0).integers(0, flat.size, _SAMPLE_SIZE)
        sample = flat[idx][~flat_pos[idx]]
    if sample.size == 0:
        return None
    j = min(sample.size - 1, int((1.0 - frac) * sample.size))  # at least a fraction `frac` of the sample is >= it
    return sample[np.argpartition(sample, j)[j]].item()


def _crossing_rank(limit: float, n_normal: int) -> int | None:
    """Smallest count k of normal pixels with k / n_normal > limit (the first FPR beyond the limit), or None."""
    k = math.floor(limit * n_normal) + 1
    while k > 1 and (k - 1) / n_normal > limit:
        k -= 1
    while k / n_normal <= limit:
        k += 1
    return None if k > n_normal else k


def aupro(anomaly_maps: ArrayLike, masks: ArrayLike, fpr_limit: float = 0.3) -> float:
    """MVTec AD's normalised area under the PRO curve up to FPR = fpr_limit (exact, over every distinct score).

    The trapezoid over points (FPR, PRO) at descending distinct thresholds equals (1 / n_normal) * sum over normal
    pixels s of (PRO(> s) + PRO(>= s)) / 2. Only normal pixels above the threshold where the FPR crosses the limit
    contribute, so only those are extracted and sorted; each anomalous pixel then finds by binary search how many
    of them it outscores, and those integer counts are summed per region. The segment that crosses the limit is
    linearly interpolated at FPR = fpr_limit. The area is divided by fpr_limit (not by the last FPR reached)."""
    limit = _check_fraction(fpr_limit, "fpr_limit")
    maps, positive = _pixel_inputs(anomaly_maps, masks)
    a_scores, a_ids, sizes = _regions(maps, positive)
    n_regions, n_normal = sizes.size, positive.size - a_scores.size
    k = _crossing_rank(limit, n_normal)
    normal = None
    if k is not None:
        bound = _tail_bound(maps, positive, k / n_normal)
        if bound is not None:
            normal = _normal_scores_at_least(maps, positive, bound)
            if normal.size < k:  # the sample under-estimated the tail: take every normal pixel
                normal = None
    if normal is None:
        normal = _normal_scores_at_least(maps, positive, None)

    order = np.argsort(a_scores, kind="stable")  # sorted queries make the binary searches cache-friendly
    a_scores, a_ids = a_scores[order], a_ids[order]
    base = 0  # index in `normal` of the first score strictly above the crossing score (0: no crossing)
    if k is not None:
        v = normal[normal.size - k]  # the k-th largest normal score: its point is the first with FPR > limit
        base = int(np.searchsorted(normal, v, side="right"))
    below = np.maximum(np.searchsorted(normal, a_scores, side="left") - base, 0)  # normal in (v, a)
    at_most = np.maximum(np.searchsorted(normal, a_scores, side="right") - base, 0)  # normal in (v, a]
    counts = np.bincount(a_ids, weights=below + at_most, minlength=n_regions)  # integers, exact in float64
    area = float(np.sum(counts / sizes)) / (2.0 * n_regions * n_normal)

    if k is not None:
        fpr_prev = (normal.size - base) / n_normal  # FPR of the last point at or below the limit
        fpr_next = (normal.size - int(np.searchsorted(normal, v, side="left"))) / n_normal
        pro_prev = float(np.sum(np.bincount(a_ids, weights=a_scores > v, minlength=n_regions) / sizes)) / n_regions
        pro_next = float(np.sum(np.bincount(a_ids, weights=a_scores >= v, minlength=n_regions) / sizes)) / n_regions
        pro_limit = pro_prev + (pro_next - pro_prev) * (limit - fpr_prev) / (fpr_next - fpr_prev)
        area += (limit - fpr_prev) * (pro_prev + pro_limit) / 2.0
    return float(min(1.0, max(0.0, area / limit)))


def pro_curve(anomaly_maps: ArrayLike, masks: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """The full PRO curve (fpr, pro) for plotting: the origin, then one point per distinct score, thresholds
    descending (so fpr is non-decreasing). Sorts every pixel, unlike `aupro`; PRO is the mean over all regions."""
    maps, positive = _pixel_inputs(anomaly_maps, masks)
    a_scores, a_ids, sizes = _regions(maps, positive)
    normal = _normal_scores_at_least(maps, positive, None)
    order = np.argsort(a_scores, kind="stable")
    a_scores = a_scores[order]
    weights = 1.0 / (sizes.size * sizes[a_ids[order]])
    pro_at_or_above = np.r_[np.cumsum(weights[::-1])[::-1], 0.0]  # [i]: PRO when the pixels a_scores[i:] are hit
    thresholds = np.union1d(normal, a_scores)[::-1]
    fpr = (normal.size - np.searchsorted(normal, thresholds, side="left")) / normal.size
    pro = pro_at_or_above[np.searchsorted(a_scores, thresholds, side="left")]
    return np.r_[0.0, fpr], np.r_[0.0, pro]
