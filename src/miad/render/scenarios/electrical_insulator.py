"""Electrical insulator (paper Table 2: surface anomaly, night): a suspension string of glass cap-and-pin discs.

The string hangs from a steel crossarm: hanger plates and a ball-eye on top, six toughened-glass discs (galvanised
cap, glass shed with two underside ribs, steel pin and ball), a socket clevis, a suspension clamp and a bit of
conductor below. Night: black world, one spotlight near the camera (an inspection vehicle's or UAV's lamp).

Defect `broken_shed`: one shed loses a chip of its rim (a boolean difference with a jagged cutter, sized relative
to the shed). The cutter's faces become their own object with their own category id, so the mask is what the
renderer's segmentation sees of the fracture surface.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import bpy  # bmesh is imported where used: it loads only after bpy
import numpy as np

from miad.render.factors import Viewpoint, ViewpointRange
from miad.render.scenarios.common import (
    DEFECT_CATEGORY,
    SMALL_SEGMENTS,
    InspectionLamp,
    NamedMaterialScene,
    box,
    extrude,
    material,
    mesh,
    replace_mesh,
    revolve,
    show,
    split_by_material,
)

# --- dimensions (metres), after a U120B-class toughened glass disc ------------------------------------------------
N_UNITS = 6  # discs in the string
UNIT_SPACING = 0.146  # cap top to cap top
SHED_RADIUS = 0.1275  # 255 mm disc
CAP_EDGE_RADIUS = 0.050  # where the glass leaves the cap: the chip depth is a fraction of the glass beyond it
CONDUCTOR_LENGTH = 1.6
CROSSARM_LENGTH = 1.4
CROSSARM_Z = 0.20  # underside of the crossarm's angle section

# fmt: off
# Revolved profiles, closed loops of (radius, z) in unit-local coordinates (z = 0 at the cap top, down is negative)
CAP_PROFILE = ((0.004, 0.000), (0.021, 0.000), (0.028, -0.005), (0.036, -0.013), (0.043, -0.024), (0.048, -0.040),
               (0.051, -0.055), (0.056, -0.060), (0.057, -0.065), (0.053, -0.068), (0.046, -0.066), (0.040, -0.030),
               (0.004, -0.012))
CEMENT_PROFILE = ((0.045, -0.062), (0.052, -0.066), (0.053, -0.070), (0.046, -0.072))
SHED_PROFILE = ((0.030, -0.040), (0.046, -0.058), (0.050, -0.067), (0.062, -0.073), (0.080, -0.080), (0.100, -0.088),
                (0.115, -0.095), (0.123, -0.099), (0.1270, -0.1025), (0.1275, -0.1060), (0.1260, -0.1095),
                (0.1225, -0.1110), (0.1195, -0.1095), (0.1150, -0.1040), (0.1050, -0.1000), (0.1000, -0.1000),
                (0.0985, -0.1180), (0.0960, -0.1245), (0.0925, -0.1245), (0.0905, -0.1180), (0.0890, -0.0975),
                (0.0780, -0.0935), (0.0740, -0.0935), (0.0725, -0.1120), (0.0700, -0.1175), (0.0670, -0.1175),
                (0.0650, -0.1120), (0.0635, -0.0905), (0.0500, -0.0880), (0.0380, -0.0920), (0.0260, -0.1000),
                (0.0150, -0.1040), (0.0090, -0.1040), (0.0090, -0.0350), (0.0200, -0.0300))
PIN_PROFILE = ((0.001, -0.095), (0.009, -0.095), (0.009, -0.134), (0.013, -0.137), (0.016, -0.142), (0.016, -0.148),
               (0.012, -0.155), (0.001, -0.157))
SOCKET_PROFILE = ((0.001, 0.004), (0.022, 0.004), (0.030, -0.010), (0.032, -0.040), (0.024, -0.060), (0.012, -0.070),
                  (0.001, -0.070))
EYE_ROD_PROFILE = ((0.001, 0.05), (0.011, 0.05), (0.011, 0.0), (0.016, -0.004), (0.016, -0.010), (0.001, -0.014))
EYE_PROFILE = tuple((0.03 + 0.009 * math.cos(a), 0.009 * math.sin(a)) for a in np.linspace(0, 2 * math.pi, 13)[:-1])
CONDUCTOR_PROFILE = ((0.0145, CONDUCTOR_LENGTH / 2), (0.0145, -CONDUCTOR_LENGTH / 2), (0.001, -CONDUCTOR_LENGTH / 2),
                     (0.001, CONDUCTOR_LENGTH / 2))
CROSSARM_SECTION = ((-0.05, CROSSARM_Z), (0.05, CROSSARM_Z), (0.05, CROSSARM_Z + 0.008), (-0.042, CROSSARM_Z + 0.008),
                    (-0.042, CROSSARM_Z + 0.1), (-0.05, CROSSARM_Z + 0.1))  # (y, z): a 100 x 100 x 8 mm angle
Z_END = -N_UNITS * UNIT_SPACING  # where the last pin's ball sits
FITTING_BOXES = {  # name: (size xyz, centre xyz)
    "hanger_a": ((0.05, 0.008, 0.13), (0.0, -0.02, 0.135)),
    "hanger_b": ((0.05, 0.008, 0.13), (0.0, 0.02, 0.135)),
    "bolt": ((0.016, 0.07, 0.016), (0.0, 0.0, 0.09)),
    "tongue": ((0.06, 0.014, 0.06), (0.0, 0.0, Z_END - 0.09)),
    "clamp": ((0.05, 0.22, 0.04), (0.0, 0.0, Z_END - 0.135)),
}
FITTING_REVOLVES = {  # name: (profile, z, tilt about x (the eye's ring and the conductor lie sideways), material)
    "eye": (EYE_PROFILE, 0.075, math.pi / 2, "galvanised"),
    "eye_rod": (EYE_ROD_PROFILE, 0.0, 0.0, "galvanised"),
    "socket": (SOCKET_PROFILE, Z_END, 0.0, "galvanised"),
    "conductor": (CONDUCTOR_PROFILE, Z_END - 0.16, math.pi / 2, "aluminium"),
}
# fmt: on

# --- materials: (base colour RGB, metallic, roughness, transmission) -------------------------------------------
MATERIALS = {
    "glass": ((0.30, 0.62, 0.48), 0.0, 0.06, 0.80),  # greenish toughened glass; no caustics, so calm at 16 spp
    "fracture": ((0.80, 0.90, 0.86), 0.0, 0.55, 0.15),  # frosted, whitish fracture face: brighter than the rim
    "galvanised": ((0.60, 0.61, 0.62), 0.85, 0.5, 0.0),  # hot-dip zinc: dull, not chrome
    "cement": ((0.42, 0.41, 0.38), 0.0, 0.85, 0.0),
    "weathered_steel": ((0.45, 0.46, 0.47), 1.0, 0.55, 0.0),  # crossarm, older galvanising
    "aluminium": ((0.55, 0.56, 0.57), 1.0, 0.45, 0.0),  # conductor strands
}
DEFECT_TYPES = ("broken_shed",)

# --- broken_shed chip, relative to the shed ----------------------------------------------------------------------
CHIP_ARC_FRACTION = (0.10, 0.25)  # share of the rim's circumference
CHIP_DEPTH_FRACTION = (0.28, 0.45)  # share of the glass annulus (rim radius minus cap edge radius)
CHIP_BOTTOM_SCALE = (0.45, 0.85)  # depth on the underside relative to the top: an inclined, conchoidal break
CHIP_JAGGEDNESS = 0.25  # relative radial jitter of the fracture outline
CHIP_POINTS = 13  # outline points along the fracture
CHIP_FACING_DEG = 70.0  # chip azimuth within this of the camera's, so defective views show it
CHIP_Z = (-0.050, -0.135)  # cutter top and bottom, unit-local: through the rim, clear of the cap
CHIP_BITE_EXPONENT = 0.6  # < 1: a blunt, rounded bite rather than a V notch
CUTTER_OUTER_RADIUS = 1.3 * SHED_RADIUS  # the cutter's outer side stays clear of the rim
CUTTER_OUTER_POINTS = 4
CUTTER_OUTER_MARGIN = 1.15  # the outer side spans a little more arc than the fracture

# --- viewpoint and night light ------------------------------------------------------------------------------
LOOK_AT = (0.0, 0.0, -0.42)  # middle of the assembly (crossarm to conductor)
VIEWPOINT_RANGE = ViewpointRange(
    r_min=1.3,
    r_max=2.0,
    theta_min=0.0,
    theta_max=360.0,
    phi_min=-10.0,
    phi_max=30.0,
    look_at=LOOK_AT,
    fixed_theta=35.5,
    fixed_phi=12.5,
)
CAMERA_FOV_DEG = 40.0  # BlenderProc's default field of view


class ElectricalInsulatorScene(NamedMaterialScene):
    """Builds the insulator string once; per image it places the chip (or not) and the night lamp."""

    key = "electrical_insulator"
    defect_types = DEFECT_TYPES
    viewpoint_range = VIEWPOINT_RANGE
    camera_fov_deg = CAMERA_FOV_DEG
    defect_category_id = DEFECT_CATEGORY
    light = "night"
    object_radius = 0.75  # metres: crossarm to conductor, around the point of interest

    def __init__(self, bproc: ModuleType) -> None:
        self._bproc = bproc
        self._mats = {name: material(bproc, name, spec) for name, spec in MATERIALS.items()}

        # Night: black world, no ambient light
        bproc.renderer.set_world_background([0.0, 0.0, 0.0], strength=0.0)

        # The string: per unit a cap, its cement ring, the glass shed and the pin with its ball
        shed_mesh = revolve("shed", SHED_PROFILE)
        parts = {
            "cap": (revolve("cap", CAP_PROFILE), "galvanised"),
            "cement": (revolve("cement", CEMENT_PROFILE), "cement"),
            "pin": (revolve("pin", PIN_PROFILE, SMALL_SEGMENTS), "galvanised"),
        }
        self._sheds = []
        for i in range(N_UNITS):
            for part, (part_mesh, mat) in parts.items():
                self._add(f"{part}_{i}", part_mesh, mat, (0.0, 0.0, -i * UNIT_SPACING))
            self._sheds.append(self._add(f"shed_{i}", shed_mesh, "glass", (0.0, 0.0, -i * UNIT_SPACING)))

        # Fittings: crossarm, hanger plates and bolt, ball-eye link on top; socket clevis, clamp, conductor below
        self._add("crossarm", extrude("crossarm", CROSSARM_SECTION, CROSSARM_LENGTH), "weathered_steel")
        for name, (size, centre) in FITTING_BOXES.items():
            self._add(name, box(name, size, centre), "galvanised")
        for name, (profile, z, tilt, mat) in FITTING_REVOLVES.items():
            obj = self._add(name, revolve(name, profile, SMALL_SEGMENTS), mat, (0.0, 0.0, z))
            obj.rotation_euler = (tilt, 0.0, 0.0)

        # Broken shed: intact-glass remainder and fracture faces as two objects, filled per image
        self._broken_body = self._add("broken_shed_body", bpy.data.meshes.new("broken_body"), "glass")
        fracture_mesh = bpy.data.meshes.new("fracture")
        self._fracture = self._add("broken_shed_fracture", fracture_mesh, "fracture", category=DEFECT_CATEGORY)
        # Boolean rig (never rendered): a shed template cut by a jagged cutter, evaluated on demand
        self._cutter = self._add("chip_cutter", bpy.data.meshes.new("cutter"), "fracture", category=0)
        self._template = self._add("chip_template", shed_mesh, "glass", category=0)
        boolean = self._template.modifiers.new("chip", "BOOLEAN")
        boolean.operation, boolean.solver, boolean.material_mode = "DIFFERENCE", "EXACT", "TRANSFER"
        boolean.object = self._cutter
        for obj in (self._broken_body, self._fracture, self._cutter, self._template):
            show(obj, False)

        # Night lamp near the camera
        self._lamp = InspectionLamp(bproc)

    def defect_objects(self) -> list[bpy.types.Object]:
        """Objects whose visible pixels are the defect mask."""
        return [self._fracture]

    def clear_defect(self) -> None:
        """All sheds intact."""
        for shed in self._sheds:
            show(shed, True)
        show(self._broken_body, False)
        show(self._fracture, False)

    def place_defect(self, rng: np.random.Generator, defect_type: str, viewpoint: Viewpoint) -> dict[str, Any]:
        """Break a chip off one shed's rim, on the side facing the camera; return what was done."""
        if defect_type not in DEFECT_TYPES:
            raise ValueError(f"{self.key} has no defect type {defect_type!r}; known: {list(DEFECT_TYPES)}")
        unit = int(rng.integers(N_UNITS))
        azimuth = viewpoint.theta + float(rng.uniform(-CHIP_FACING_DEG, CHIP_FACING_DEG))
        arc = float(rng.uniform(*CHIP_ARC_FRACTION))
        depth = float(rng.uniform(*CHIP_DEPTH_FRACTION))
        bottom = float(rng.uniform(*CHIP_BOTTOM_SCALE))
        jitter = rng.uniform(-CHIP_JAGGEDNESS, CHIP_JAGGEDNESS, size=(3, CHIP_POINTS))
        self._set_cutter(math.radians(azimuth), arc, depth * (SHED_RADIUS - CAP_EDGE_RADIUS), bottom, jitter)

        # Evaluate the boolean, then split its result by material: cutter faces are the fracture
        show(self._template, True)
        show(self._cutter, True)
        evaluated = self._template.evaluated_get(bpy.context.evaluated_depsgraph_get())
        result = bpy.data.meshes.new_from_object(evaluated)
        show(self._template, False)
        show(self._cutter, False)
        slots = list(result.materials)
        fracture = self._mats["fracture"]
        fracture_slot = slots.index(fracture) if fracture in slots else -1  # -1: the cutter missed the shed
        replace_mesh(self._broken_body, split_by_material(result, fracture_slot, keep_slot=False), self._mats["glass"])
        replace_mesh(self._fracture, split_by_material(result, fracture_slot, keep_slot=True), self._mats["fracture"])
        bpy.data.meshes.remove(result)

        # Show the broken shed in place of the intact one
        for i, shed in enumerate(self._sheds):
            show(shed, i != unit)
        for obj in (self._broken_body, self._fracture):
            obj.location = self._sheds[unit].location
            show(obj, True)
        bpy.context.view_layer.update()
        return {
            "type": defect_type,
            "shed": unit,
            "azimuth_deg": azimuth % 360.0,
            "arc_fraction": arc,
            "depth_fraction": depth,
            "bottom_scale": bottom,
        }

    def _set_cutter(self, azimuth: float, arc: float, depth: float, bottom: float, jitter: np.ndarray) -> None:
        """A jagged prism through the rim: outer arc outside the shed, inner outline `depth` deep at its middle."""
        half = math.pi * arc  # half of the chip's angular width
        t = np.linspace(0.0, 1.0, CHIP_POINTS)
        angles = azimuth - half + 2 * half * t
        bite = np.sin(math.pi * t) ** CHIP_BITE_EXPONENT  # zero at both ends: the fracture meets the rim
        outer_angles = azimuth + np.linspace(half, -half, CUTTER_OUTER_POINTS) * CUTTER_OUTER_MARGIN
        rings = []
        levels = ((CHIP_Z[0], 1.0), (sum(CHIP_Z) / 2, (1 + bottom) / 2), (CHIP_Z[1], bottom))  # top, middle, bottom
        for level, (z, scale) in enumerate(levels):
            radius = SHED_RADIUS - depth * scale * bite * (1 + jitter[level])
            inner = [(r * math.cos(a), r * math.sin(a), z) for r, a in zip(radius, angles, strict=True)]
            outer = [(CUTTER_OUTER_RADIUS * math.cos(a), CUTTER_OUTER_RADIUS * math.sin(a), z) for a in outer_angles]
            rings.append(inner + outer)
        n = len(rings[0])
        verts = [v for ring in rings for v in ring]
        faces = [tuple(range(n)), tuple(range(3 * n - 1, 2 * n - 1, -1))]
        faces += [
            (k * n + i, k * n + (i + 1) % n, (k + 1) * n + (i + 1) % n, (k + 1) * n + i)
            for k in range(2)
            for i in range(n)
        ]
        replace_mesh(self._cutter, mesh("cutter", verts, faces, smooth=False), self._mats["fracture"])

    def place_lights(self, rng: np.random.Generator, viewpoint: Viewpoint) -> dict[str, Any]:
        """Mount the lamp above the camera, jittered sideways, aimed at the point of interest."""
        return self._lamp.place(rng, viewpoint)

    def surface_materials(self) -> list[bpy.types.Material]:
        """Materials that weather (US): glass, caps, cement and fittings; not the fracture."""
        return [mat for name, mat in self._mats.items() if name != "fracture"]
