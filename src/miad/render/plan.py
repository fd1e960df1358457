"""What one image should be (a plan) and what rendering it produced (a sample).

The shard writer plans, the scenario renderer executes; this module is the contract between them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from miad.data.layout import GOOD


@dataclass(frozen=True)
class SamplePlan:
    """One image to render: which split, whether and how it is defective, and its own seed."""

    index: int  # position within its split (0-based, dense)
    split: str  # "train" or "test"
    defect_type: str  # GOOD or one of the scenario's defect types
    seed: int  # every random draw for this image comes from this seed, except the light's when light_seed is set
    light_seed: int | None = None  # a controlled light: the same seed (and the controlled view) for every image

    @property
    def label(self) -> int:
        return 0 if self.defect_type == GOOD else 1

    @property
    def stem(self) -> str:
        return f"{self.split}_{self.index:06d}"


@dataclass
class RenderedSample:
    """The renderer's output for one plan.

    image: (H, W, 3) uint8 RGB. mask: (H, W) uint8, 255 on defect pixels, 0 elsewhere (all 0 when good).
    record: JSON-ready facts about the image (camera pose, factor settings, ...), written to the index.
    cycles_seconds: wall time spent inside Cycles' own render call (for benchmarks; never written to shards).
    """

    image: np.ndarray
    mask: np.ndarray
    record: dict[str, Any] = field(default_factory=dict)
    cycles_seconds: float = 0.0
