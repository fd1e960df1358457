"""Scenario scene builders, registered explicitly by scenario key (one module per scenario).

A builder is constructed once per renderer (after `bproc.init` work) and builds its static scene; per image the
renderer asks it to place or clear a defect and to place the lights. Its interface is `SceneBuilder`. Modules
load on first use (each imports bpy), so listing the registry costs nothing.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any, Protocol

import numpy as np

from miad.render.factors import Viewpoint, ViewpointRange


class SceneBuilder(Protocol):
    """What the renderer needs from a scenario.

    Segmentation: object-of-interest parts carry `common.OBJECT_CATEGORY`, defect pixels `defect_category_id`,
    everything else 0. `surface_materials()` are the materials the US factor weathers (never the defect's own);
    `object_radius` (metres, around the point of interest) places background objects and sizes surface textures.
    """

    key: str
    defect_types: tuple[str, ...]
    viewpoint_range: ViewpointRange
    camera_fov_deg: float
    defect_category_id: int
    light: str  # "day" or "night" (paper Table 2)
    object_radius: float

    def __init__(self, bproc: ModuleType) -> None: ...

    def place_defect(self, rng: np.random.Generator, defect_type: str, viewpoint: Viewpoint) -> dict[str, Any]: ...

    def clear_defect(self) -> None: ...

    def defect_objects(self) -> list[Any]: ...

    def place_lights(self, rng: np.random.Generator, viewpoint: Viewpoint) -> dict[str, Any]: ...

    def surface_materials(self) -> list[Any]: ...


# scenario key -> "module:class" under miad.render.scenarios
_BUILDER_PATHS: dict[str, str] = {
    "electrical_insulator": "electrical_insulator:ElectricalInsulatorScene",
    "metal_welding": "metal_welding:MetalWeldingScene",
    "photovoltaic_module": "photovoltaic_module:PhotovoltaicModuleScene",
    "wind_turbine": "wind_turbine:WindTurbineScene",
    "catenary_dropper": "catenary_dropper:CatenaryDropperScene",
    "nut_and_bolt": "nut_and_bolt:NutAndBoltScene",
    "witness_mark": "witness_mark:WitnessMarkScene",
}
SCENE_BUILDER_KEYS = tuple(_BUILDER_PATHS)


def scene_builder(scenario: str) -> type[SceneBuilder]:
    """The builder class of `scenario` (imports its module, and with it bpy)."""
    if scenario not in _BUILDER_PATHS:
        raise ValueError(f"no scene builder for scenario {scenario!r}; renderable: {sorted(_BUILDER_PATHS)}")
    module, cls = _BUILDER_PATHS[scenario].split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)
