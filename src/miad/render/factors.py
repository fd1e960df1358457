"""Uncontrolled factors (paper 3.1) as pure samplers: a seeded `np.random.Generator` in, plain numbers out.

Only the viewpoint (UV) exists so far. The camera sits on a sphere around a point of interest at
(r, theta, phi): radius, azimuth and elevation, in metres and degrees. Paper eq. 1-2 keep train and test views
apart: train angles lie in the union of [2n, 2n+1) degrees, test angles in [2n+1, 2n+2); r is shared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

SPLIT_PARITY = {"train": 0, "test": 1}  # floor(angle) % 2 of the split's 1-degree bins (paper eq. 1-2)
FULL_TURN_DEG = 360.0


def angle_in_split(value_deg: float, split: str) -> bool:
    """Whether an angle (degrees) lies in `split`'s bins; bins repeat every 360 degrees, negatives included."""
    return math.floor(value_deg) % 2 == _parity(split)


def _parity(split: str) -> int:
    if split not in SPLIT_PARITY:
        raise ValueError(f"split must be one of {sorted(SPLIT_PARITY)}, got {split!r}")
    return SPLIT_PARITY[split]


def split_segments(lo_deg: float, hi_deg: float, split: str) -> list[tuple[float, float]]:
    """The parts of [lo, hi) that belong to `split`, as half-open (start, end) pieces of its 1-degree bins."""
    parity = _parity(split)
    if not hi_deg > lo_deg:
        raise ValueError(f"angle range must have hi > lo, got [{lo_deg}, {hi_deg})")
    segments = []
    for k in range(math.floor(lo_deg), math.ceil(hi_deg)):
        start, end = max(float(k), lo_deg), min(float(k + 1), hi_deg)
        if k % 2 == parity and end > start:
            segments.append((start, end))
    return segments


def sample_angle(rng: np.random.Generator, lo_deg: float, hi_deg: float, split: str) -> float:
    """Draw an angle uniformly over the part of [lo, hi) that lies in `split`'s bins (one uniform draw).

    Partial bins at either end of the range are weighted by their length, and the result is clamped inside its
    bin so that float rounding can never push it into the other split's bin.
    """
    segments = split_segments(lo_deg, hi_deg, split)
    if not segments:
        raise ValueError(f"[{lo_deg}, {hi_deg}) holds no {split} angle (bins [2n, 2n+1) are train, the rest test)")
    lengths = np.array([end - start for start, end in segments])
    # Inverse CDF: walk the allowed pieces until the drawn measure is used up
    u = float(rng.random()) * float(lengths.sum())
    index = min(int(np.searchsorted(np.cumsum(lengths), u, side="right")), len(segments) - 1)
    start, end = segments[index]
    value = start + (u - float(lengths[:index].sum()))
    # Keep it in [start, end): rounding may land on the bin's upper edge, which belongs to the other split
    return float(min(max(value, start), math.nextafter(end, start)))


@dataclass(frozen=True)
class ViewpointRange:
    """Where the camera may be: r in [r_min, r_max) metres, angles in degrees, looking at `look_at`.

    `fixed_*` pick the controlled pose (UV off); None means the middle of the range.
    """

    r_min: float
    r_max: float
    theta_min: float = 0.0
    theta_max: float = FULL_TURN_DEG
    phi_min: float = 0.0
    phi_max: float = 90.0
    look_at: tuple[float, float, float] = (0.0, 0.0, 0.0)  # point of interest, world coordinates
    fixed_r: float | None = None
    fixed_theta: float | None = None
    fixed_phi: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.r_min <= self.r_max:
            raise ValueError(f"need 0 < r_min <= r_max, got r_min={self.r_min}, r_max={self.r_max}")
        if not -90.0 <= self.phi_min < self.phi_max <= 90.0:
            raise ValueError(f"need -90 <= phi_min < phi_max <= 90, got [{self.phi_min}, {self.phi_max})")
        if not self.theta_min < self.theta_max <= self.theta_min + FULL_TURN_DEG:
            raise ValueError(
                f"theta range must be non-empty and at most one turn, got [{self.theta_min}, {self.theta_max})"
            )

    def to_record(self) -> dict[str, Any]:
        return {
            "r": [self.r_min, self.r_max],
            "theta": [self.theta_min, self.theta_max],
            "phi": [self.phi_min, self.phi_max],
            "look_at": list(self.look_at),
        }


@dataclass(frozen=True)
class Viewpoint:
    """One camera pose: spherical coordinates around `look_at` and the resulting world location."""

    r: float
    theta: float  # azimuth, degrees in [0, 360), 0 = +x, 90 = +y
    phi: float  # elevation, degrees, positive = camera above the point of interest
    location: tuple[float, float, float]
    look_at: tuple[float, float, float]

    def to_record(self) -> dict[str, Any]:
        return {
            "r": self.r,
            "theta": self.theta,
            "phi": self.phi,
            "location": list(self.location),
            "look_at": list(self.look_at),
        }


def wrap_degrees(value_deg: float) -> float:
    """Fold an angle into [0, 360) without changing its split: float rounding may only push it up onto a bin edge."""
    wrapped = value_deg % FULL_TURN_DEG
    if wrapped >= FULL_TURN_DEG or math.floor(wrapped) % 2 != math.floor(value_deg) % 2:
        wrapped = math.nextafter(wrapped, -math.inf)
    return wrapped


def viewpoint_at(r: float, theta_deg: float, phi_deg: float, look_at: tuple[float, float, float]) -> Viewpoint:
    """The pose at (r, theta, phi) around `look_at`; theta is folded into [0, 360)."""
    theta_deg = wrap_degrees(theta_deg)
    theta, phi = math.radians(theta_deg), math.radians(phi_deg)
    offset = (r * math.cos(phi) * math.cos(theta), r * math.cos(phi) * math.sin(theta), r * math.sin(phi))
    location = (look_at[0] + offset[0], look_at[1] + offset[1], look_at[2] + offset[2])
    return Viewpoint(r=r, theta=theta_deg, phi=phi_deg, location=location, look_at=tuple(look_at))


def sample_viewpoint(rng: np.random.Generator, vrange: ViewpointRange, split: str) -> Viewpoint:
    """UV on: r uniform in the shared range, theta and phi uniform within `split`'s bins (paper eq. 1-2)."""
    r = float(rng.uniform(vrange.r_min, vrange.r_max))
    theta = sample_angle(rng, vrange.theta_min, vrange.theta_max, split)
    phi = sample_angle(rng, vrange.phi_min, vrange.phi_max, split)
    return viewpoint_at(r, theta, phi, vrange.look_at)


def fixed_viewpoint(vrange: ViewpointRange) -> Viewpoint:
    """UV off: the one controlled pose, shared by train and test images."""
    r = vrange.fixed_r if vrange.fixed_r is not None else (vrange.r_min + vrange.r_max) / 2
    theta = vrange.fixed_theta if vrange.fixed_theta is not None else (vrange.theta_min + vrange.theta_max) / 2
    phi = vrange.fixed_phi if vrange.fixed_phi is not None else (vrange.phi_min + vrange.phi_max) / 2
    return viewpoint_at(r, theta, phi, vrange.look_at)
