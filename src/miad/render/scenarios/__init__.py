"""Scenario scene builders, registered explicitly by scenario key (see `miad.catalog.RENDERABLE`).

A builder is constructed once per renderer (after `bproc.init` work) and builds its static scene; per image the
renderer asks it to place or clear a defect and to place the lights. Its interface is `SceneBuilder`.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Protocol

import numpy as np

from miad.render.factors import Viewpoint, ViewpointRange
from miad.render.scenarios.electrical_insulator import ElectricalInsulatorScene


class SceneBuilder(Protocol):
    """What the renderer needs from a scenario."""

    key: str
    defect_types: tuple[str, ...]
    viewpoint_range: ViewpointRange
    camera_fov_deg: float
    defect_category_id: int  # segmentation id of defect pixels

    def __init__(self, bproc: ModuleType) -> None: ...

    def place_defect(self, rng: np.random.Generator, defect_type: str, viewpoint: Viewpoint) -> dict[str, Any]: ...

    def clear_defect(self) -> None: ...

    def defect_objects(self) -> list[Any]: ...

    def place_lights(self, rng: np.random.Generator, viewpoint: Viewpoint) -> dict[str, Any]: ...


SCENE_BUILDERS: dict[str, type[SceneBuilder]] = {
    "electrical_insulator": ElectricalInsulatorScene,
}
