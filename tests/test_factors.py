"""Viewpoint sampler (paper eq. 1-2): train and test angles never share a 1-degree bin; draws are reproducible."""

from __future__ import annotations

import math

import numpy as np
import pytest

from miad.render.factors import (
    ViewpointRange,
    angle_in_split,
    fixed_viewpoint,
    sample_angle,
    sample_viewpoint,
    split_segments,
    wrap_degrees,
)

RANGES = [(0.0, 360.0), (-10.0, 30.0), (0.3, 7.8), (-3.7, -0.2), (12.5, 13.9), (359.2, 361.7)]
DRAWS = 2000


@pytest.mark.parametrize(
    "value, train",
    [
        (0.0, True),
        (0.999999, True),
        (1.0, False),
        (359.5, False),
        (-0.5, False),
        (-1.0, False),
        (-1.5, True),
        (360.0, True),
        (2.0, True),
    ],
)
def test_angle_in_split_follows_the_paper(value: float, train: bool) -> None:
    assert angle_in_split(value, "train") is train
    assert angle_in_split(value, "test") is not train


def test_bin_edges_belong_to_exactly_one_split() -> None:
    for k in range(-360, 361):
        for value in (float(k), math.nextafter(float(k), -math.inf), math.nextafter(float(k), math.inf)):
            assert angle_in_split(value, "train") != angle_in_split(value, "test")


@pytest.mark.parametrize("lo, hi", RANGES)
@pytest.mark.parametrize("split", ["train", "test"])
def test_sample_angle_stays_in_range_and_split(lo: float, hi: float, split: str) -> None:
    rng = np.random.default_rng(0)
    values = np.array([sample_angle(rng, lo, hi, split) for _ in range(DRAWS)])
    assert values.min() >= lo and values.max() < hi
    assert all(angle_in_split(v, split) for v in values)
    other = "test" if split == "train" else "train"
    assert not any(angle_in_split(v, other) for v in values)


def test_sample_angle_is_uniform_over_the_allowed_part() -> None:
    rng = np.random.default_rng(1)
    lo, hi = 0.5, 4.0  # train part: [0.5, 1) and [2, 3): 0.5 + 1.0 degrees
    values = np.array([sample_angle(rng, lo, hi, "train") for _ in range(6000)])
    share_first = np.mean(values < 1.0)
    assert abs(share_first - 1 / 3) < 0.03


def test_sample_angle_edge_of_bin_cannot_round_into_the_other_split() -> None:
    class TopRng:  # a generator that always returns the largest double below 1
        def random(self) -> float:
            return math.nextafter(1.0, 0.0)

    for lo, hi in [(0.0, 1.0), (1e6, 1e6 + 1.0), (-3.0, -2.0), (0.0, 359.0)]:
        for split in ("train", "test"):
            if split_segments(lo, hi, split):
                value = sample_angle(TopRng(), lo, hi, split)  # type: ignore[arg-type]
                assert angle_in_split(value, split) and lo <= value < hi


def test_empty_split_part_raises() -> None:
    with pytest.raises(ValueError, match="holds no test angle"):
        sample_angle(np.random.default_rng(0), 2.2, 2.8, "test")
    with pytest.raises(ValueError, match="split must be one of"):
        sample_angle(np.random.default_rng(0), 0.0, 10.0, "val")


def test_wrap_degrees_keeps_the_split() -> None:
    for value in (-1e-17, -2.0000000000000004, -0.5, 359.9999999999999, 720.3, -360.0, 1e-300):
        wrapped = wrap_degrees(value)
        assert 0.0 <= wrapped < 360.0
        assert angle_in_split(wrapped, "train") == angle_in_split(value, "train")


def test_sample_viewpoint_splits_are_disjoint_and_deterministic() -> None:
    vrange = ViewpointRange(r_min=1.0, r_max=2.0, phi_min=-10.0, phi_max=30.0, look_at=(0.0, 0.0, -0.5))
    for split in ("train", "test"):
        rng_a, rng_b = np.random.default_rng(42), np.random.default_rng(42)
        for _ in range(500):
            a, b = sample_viewpoint(rng_a, vrange, split), sample_viewpoint(rng_b, vrange, split)
            assert a == b
            assert angle_in_split(a.theta, split) and angle_in_split(a.phi, split)
            assert 1.0 <= a.r < 2.0 and 0.0 <= a.theta < 360.0 and -10.0 <= a.phi < 30.0
            offset = np.subtract(a.location, a.look_at)
            assert np.linalg.norm(offset) == pytest.approx(a.r)
            assert math.degrees(math.asin(offset[2] / a.r)) == pytest.approx(a.phi)


def test_fixed_viewpoint_is_one_pose() -> None:
    vrange = ViewpointRange(r_min=1.0, r_max=2.0, fixed_theta=35.5, fixed_phi=12.5)
    pose = fixed_viewpoint(vrange)
    assert pose == fixed_viewpoint(vrange)
    assert (pose.r, pose.theta, pose.phi) == (1.5, 35.5, 12.5)
    assert pose.to_record()["location"] == list(pose.location)


def test_viewpoint_range_is_validated() -> None:
    with pytest.raises(ValueError, match="r_min"):
        ViewpointRange(r_min=2.0, r_max=1.0)
    with pytest.raises(ValueError, match="phi"):
        ViewpointRange(r_min=1.0, r_max=2.0, phi_min=10.0, phi_max=5.0)
