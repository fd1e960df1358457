"""Nut and bolt (paper Table 2: logical anomaly, night): a bolted splice joint of two steel I-beams.

Two rolled I-beams meet end to end; a cover (splice) plate on their top flanges carries eight M20 bolts in two
rows of four, two columns either side of the joint. Each bolt passes up through flange and plate and ends above
in a large washer, a chamfered hex nut and a threaded end with helical threads. Galvanised fasteners on an oily,
mill-scaled plate and painted beams. Night: black world, one spotlight near the camera (an inspection lamp).

Defects (logical, masks after MVTec LOCO), on one bolt in view:
- `missing_nut`: the nut is gone, washer and threaded end remain; the mask is where the nut should be (a
  transparent ghost nut in its place carries the defect category).
- `loose_nut`: the nut has backed off up the thread (lifted by most of its height, turned), leaving a gap above
  the washer; the mask is the displaced nut itself.
- `missing_washer`: the washer is gone and the nut sits down on the plate; the mask is where the washer should
  be (a ghost washer).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import ModuleType
from typing import Any

import bpy
import numpy as np

from miad.render.factors import Viewpoint, ViewpointRange
from miad.render.scenarios.common import (
    DEFECT_CATEGORY,
    OBJECT_CATEGORY,
    InspectionLamp,
    add_object,
    box,
    camera_frame,
    ghost_material,
    material,
    mesh,
    show,
)

# --- dimensions (metres), after an ISO 4032 M20 nut and a large (DIN 9021-like) washer ------------------------
BOLT_DIAMETER = 0.020
THREAD_PITCH = 0.0025
THREAD_DEPTH = 0.00135  # major minus minor radius
NUT_ACROSS_FLATS = 0.030
NUT_HEIGHT = 0.018
NUT_CHAMFER_DIAMETER = 0.95 * NUT_ACROSS_FLATS  # where the 30 degree chamfer meets the bearing faces
NUT_CHAMFER_ANGLE = math.radians(30.0)
WASHER_OUTER_RADIUS = 0.025
WASHER_INNER_RADIUS = 0.011
WASHER_THICKNESS = 0.0045
WASHER_EDGE = 0.0006  # edge break
BOLT_PROTRUSION = 0.024  # threaded end above the nut: room for a loose nut to back off
BOLT_TIP_CHAMFER = 0.0015
BOLT_BOTTOM = -0.004  # the shank starts inside the plate

PLATE_SIZE = (0.30, 0.18, 0.015)  # splice plate on the top flanges
BOLT_COLUMNS_X = (-0.12, -0.04, 0.04, 0.12)  # two columns either side of the joint
BOLT_ROWS_Y = (-0.045, 0.045)
BEAM_LENGTH = 0.60  # each beam, from the joint outwards
JOINT_GAP = 0.008
FLANGE_WIDTH = 0.20
FLANGE_THICKNESS = 0.016
WEB_THICKNESS = 0.010
BEAM_DEPTH = 0.30

NUT_SEGMENTS = 48  # 8 per hex side, corners included
BOLT_SEGMENTS = 32
THREAD_ROWS_PER_PITCH = 6

# --- materials: (base colour RGB, metallic, roughness, transmission) -------------------------------------------
MATERIALS = {
    "galvanised": ((0.42, 0.43, 0.44), 0.55, 0.55, 0.0),  # hot-dip galvanised nuts: dull grey zinc
    "washer_steel": ((0.66, 0.66, 0.64), 0.75, 0.45, 0.0),  # bright zinc-plated washers
    "bolt_steel": ((0.46, 0.46, 0.47), 1.0, 0.38, 0.0),  # oily threaded ends
    "plate_steel": ((0.20, 0.20, 0.21), 0.8, 0.6, 0.0),  # mill scale, a little oily
    "beam_paint": ((0.16, 0.18, 0.19), 0.0, 0.6, 0.0),  # grey primer on the beams
}
DEFECT_TYPES = ("missing_nut", "loose_nut", "missing_washer")

# --- defects, relative to the fastener ----------------------------------------------------------------------------
LOOSE_LIFT_FRACTION = (0.6, 0.95)  # of the nut height: how far the nut has backed off up the thread
LOOSE_TURN_DEG = (10.0, 50.0)  # and turned (a hex looks the same every 60 degrees)
IN_FRAME_FRACTION = 0.8  # defective bolt's centre within this share of the half-frame

# --- viewpoint and night light ------------------------------------------------------------------------------
LOOK_AT = (0.0, 0.0, PLATE_SIZE[2] + 0.01)  # centre of the bolt pattern, at nut height
VIEWPOINT_RANGE = ViewpointRange(
    r_min=0.55,
    r_max=0.80,
    theta_min=0.0,
    theta_max=360.0,
    phi_min=25.0,
    phi_max=70.0,
    look_at=LOOK_AT,
    fixed_theta=299.5,
    fixed_phi=45.5,
)
CAMERA_FOV_DEG = 40.0


def _polar_solid(name: str, angles: np.ndarray, loop: Callable[[float], np.ndarray]) -> bpy.types.Mesh:
    """A closed solid about z whose (radius, z) loop may change with the angle (hex flats, helical threads)."""
    loops = np.stack([loop(float(a)) for a in angles])  # (S, P, 2)
    cos, sin = np.cos(angles)[:, None], np.sin(angles)[:, None]
    verts = np.stack([loops[..., 0] * cos, loops[..., 0] * sin, loops[..., 1]], axis=-1).reshape(-1, 3)
    segments, n = loops.shape[:2]
    faces = [
        (s * n + p, s * n + (p + 1) % n, ((s + 1) % segments) * n + (p + 1) % n, ((s + 1) % segments) * n + p)
        for s in range(segments)
        for p in range(n)
    ]
    return mesh(name, verts.tolist(), faces, smooth=False)


def _hex_radius(angle: float, across_flats: float) -> float:
    """Distance from the axis to a hexagon's outline (flats facing 0, 60, ... degrees) at `angle`."""
    local = (angle + math.pi / 6) % (math.pi / 3) - math.pi / 6
    return across_flats / 2 / math.cos(local)


def nut_mesh(name: str) -> bpy.types.Mesh:
    """A hex nut from z = 0 to NUT_HEIGHT: hex prism, both faces chamfered at 30 degrees, with its bore."""
    chamfer_depth = (NUT_ACROSS_FLATS / math.sqrt(3) - NUT_CHAMFER_DIAMETER / 2) * math.tan(NUT_CHAMFER_ANGLE)
    depths = np.linspace(0.0, chamfer_depth * 1.05, 7)
    zs = np.concatenate([depths, NUT_HEIGHT - depths[::-1]])
    bore = BOLT_DIAMETER / 2

    def loop(angle: float) -> np.ndarray:
        hex_r = _hex_radius(angle, NUT_ACROSS_FLATS)
        depth = np.minimum(zs, NUT_HEIGHT - zs)
        outer = np.minimum(hex_r, NUT_CHAMFER_DIAMETER / 2 + depth / math.tan(NUT_CHAMFER_ANGLE))
        return np.array([(bore, 0.0), *zip(outer, zs, strict=True), (bore, NUT_HEIGHT)])

    angles = math.pi / 6 + np.linspace(0.0, 2 * math.pi, NUT_SEGMENTS, endpoint=False)  # starts at a corner
    return _polar_solid(name, angles, loop)


def washer_mesh(name: str) -> bpy.types.Mesh:
    """A flat washer from z = 0 to WASHER_THICKNESS with broken outer edges."""
    ro, ri, t, e = WASHER_OUTER_RADIUS, WASHER_INNER_RADIUS, WASHER_THICKNESS, WASHER_EDGE
    profile = np.array([(ri, 0.0), (ro - e, 0.0), (ro, e), (ro, t - e), (ro - e, t), (ri, t)])
    angles = np.linspace(0.0, 2 * math.pi, 64, endpoint=False)
    return _polar_solid(name, angles, lambda _a: profile)


def bolt_mesh(name: str, top: float) -> bpy.types.Mesh:
    """A threaded bolt end from BOLT_BOTTOM to `top`: helical V threads and a 45 degree chamfered tip."""
    major = BOLT_DIAMETER / 2
    rows = math.ceil((top - BOLT_BOTTOM) / THREAD_PITCH * THREAD_ROWS_PER_PITCH)
    zs = np.linspace(BOLT_BOTTOM, top, rows + 1)

    def loop(angle: float) -> np.ndarray:
        phase = ((zs - THREAD_PITCH * angle / (2 * math.pi)) / THREAD_PITCH) % 1.0
        ridge = np.clip(1.6 - 3.2 * np.abs(phase - 0.5), 0.0, 1.0)  # V thread with flat crest and root
        radius = np.minimum(major - THREAD_DEPTH * (1 - ridge), major - BOLT_TIP_CHAMFER + (top - zs))
        return np.array([(1e-4, BOLT_BOTTOM), *zip(radius, zs, strict=True), (1e-4, top)])

    angles = np.linspace(0.0, 2 * math.pi, BOLT_SEGMENTS, endpoint=False)
    return _polar_solid(name, angles, loop)


class NutAndBoltScene:
    """Builds the beam splice once; per image it removes, loosens or strips one fastener, and places the lamp."""

    key = "nut_and_bolt"
    defect_types = DEFECT_TYPES
    viewpoint_range = VIEWPOINT_RANGE
    camera_fov_deg = CAMERA_FOV_DEG
    defect_category_id = DEFECT_CATEGORY
    light = "night"
    object_radius = 0.25  # metres: the splice plate and its bolts, around the point of interest

    def __init__(self, bproc: ModuleType) -> None:
        self._bproc = bproc
        self._mats = {name: material(bproc, name, spec) for name, spec in MATERIALS.items()}

        # Night: black world, no ambient light
        bproc.renderer.set_world_background([0.0, 0.0, 0.0], strength=0.0)

        # Two I-beams meeting at x = 0 under the splice plate (top flange top at z = 0)
        half = BEAM_LENGTH / 2 + JOINT_GAP / 2
        for side, sign in (("left", -1.0), ("right", 1.0)):
            x = sign * half
            parts = {
                "top_flange": ((BEAM_LENGTH, FLANGE_WIDTH, FLANGE_THICKNESS), (x, 0.0, -FLANGE_THICKNESS / 2)),
                "web": ((BEAM_LENGTH, WEB_THICKNESS, BEAM_DEPTH - 2 * FLANGE_THICKNESS), (x, 0.0, -BEAM_DEPTH / 2)),
                "bottom_flange": (
                    (BEAM_LENGTH, FLANGE_WIDTH, FLANGE_THICKNESS),
                    (x, 0.0, -BEAM_DEPTH + FLANGE_THICKNESS / 2),
                ),
            }
            for part, (size, centre) in parts.items():
                self._add(f"{side}_{part}", box(f"{side}_{part}", size, centre), "beam_paint")
        plate_t = PLATE_SIZE[2]
        self._add("splice_plate", box("splice_plate", PLATE_SIZE, (0.0, 0.0, plate_t / 2)), "plate_steel")

        # Fasteners: per bolt a threaded end, a washer on the plate and a nut on the washer
        self._bolt_xy = [(x, y) for y in BOLT_ROWS_Y for x in BOLT_COLUMNS_X]
        nut_data, washer_data = nut_mesh("nut"), washer_mesh("washer")
        bolt_data = bolt_mesh("bolt", WASHER_THICKNESS + NUT_HEIGHT + BOLT_PROTRUSION)
        self._nuts, self._washers = [], []
        for i, (x, y) in enumerate(self._bolt_xy):
            self._add(f"bolt_{i}", bolt_data, "bolt_steel", (x, y, plate_t))
            self._washers.append(self._add(f"washer_{i}", washer_data, "washer_steel", (x, y, plate_t)))
            self._nuts.append(self._add(f"nut_{i}", nut_data, "galvanised", self._nut_home(i)))

        # Ghosts of a missing nut and a missing washer: transparent, yet written to the mask
        ghost = ghost_material("ghost_fastener")
        self._ghost_nut = add_object("ghost_nut", nut_mesh("ghost_nut"), ghost, category=DEFECT_CATEGORY)
        self._ghost_washer = add_object("ghost_washer", washer_mesh("ghost_washer"), ghost, category=DEFECT_CATEGORY)
        show(self._ghost_nut, False)
        show(self._ghost_washer, False)
        self._defect_objects: list[bpy.types.Object] = []

        # Night lamp near the camera
        self._lamp = InspectionLamp(bproc)

    def _add(
        self, name: str, data: bpy.types.Mesh, mat: str, location: tuple[float, float, float] = (0, 0, 0)
    ) -> bpy.types.Object:
        """Link a new object-of-interest part using mesh `data` with material `mat`."""
        return add_object(name, data, self._mats[mat], location, OBJECT_CATEGORY)

    def _nut_home(self, bolt: int) -> tuple[float, float, float]:
        """Where bolt `bolt`'s nut sits when tightened on its washer."""
        x, y = self._bolt_xy[bolt]
        return (x, y, PLATE_SIZE[2] + WASHER_THICKNESS)

    def defect_objects(self) -> list[bpy.types.Object]:
        """Objects whose visible pixels are the defect mask."""
        return list(self._defect_objects)

    def clear_defect(self) -> None:
        """Every bolt with its washer and its nut tightened."""
        for i, (nut, washer) in enumerate(zip(self._nuts, self._washers, strict=True)):
            nut.location = self._nut_home(i)
            nut.rotation_euler = (0.0, 0.0, 0.0)
            nut["category_id"] = OBJECT_CATEGORY
            show(nut, True)
            show(washer, True)
        show(self._ghost_nut, False)
        show(self._ghost_washer, False)
        self._defect_objects = []
        bpy.context.view_layer.update()

    def place_defect(self, rng: np.random.Generator, defect_type: str, viewpoint: Viewpoint) -> dict[str, Any]:
        """Remove, loosen or strip one fastener in view; return what was done."""
        if defect_type not in DEFECT_TYPES:
            raise ValueError(f"{self.key} has no defect type {defect_type!r}; known: {list(DEFECT_TYPES)}")
        self.clear_defect()
        candidates = self._bolts_in_frame(viewpoint)
        bolt = int(candidates[int(rng.integers(len(candidates)))])
        nut, washer = self._nuts[bolt], self._washers[bolt]
        record: dict[str, Any] = {"type": defect_type, "bolt": bolt}
        if defect_type == "missing_nut":
            show(nut, False)
            self._ghost_nut.location = nut.location
            show(self._ghost_nut, True)
            self._defect_objects = [self._ghost_nut]
        elif defect_type == "loose_nut":
            lift = float(rng.uniform(*LOOSE_LIFT_FRACTION))
            turn = float(rng.uniform(*LOOSE_TURN_DEG))
            x, y, z = self._nut_home(bolt)
            nut.location = (x, y, z + lift * NUT_HEIGHT)
            nut.rotation_euler = (0.0, 0.0, math.radians(turn))
            nut["category_id"] = DEFECT_CATEGORY
            self._defect_objects = [nut]
            record.update(lift_fraction=lift, turn_deg=turn)
        else:  # missing_washer: the nut sits down on the plate
            show(washer, False)
            self._ghost_washer.location = washer.location
            show(self._ghost_washer, True)
            x, y, z = self._nut_home(bolt)
            nut.location = (x, y, z - WASHER_THICKNESS)
            self._defect_objects = [self._ghost_washer]
        bpy.context.view_layer.update()
        return record

    def _bolts_in_frame(self, viewpoint: Viewpoint) -> list[int]:
        """The nearer half of the bolts whose centre projects well inside the frame (of all bolts if none does)."""
        forward, side, up = camera_frame(viewpoint)
        cam = np.asarray(viewpoint.location)
        limit = IN_FRAME_FRACTION * math.tan(math.radians(CAMERA_FOV_DEG) / 2)
        inside = []
        for i in range(len(self._bolt_xy)):
            offset = np.asarray(self._nut_home(i)) - cam
            depth = float(offset @ forward)
            if abs(offset @ side) / depth < limit and abs(offset @ up) / depth < limit:
                inside.append(i)
        inside = inside or list(range(len(self._bolt_xy)))
        # Of those, the nearer half: bolts facing the camera, not hidden behind their neighbours
        inside.sort(key=lambda i: float((np.asarray(self._nut_home(i)) - cam) @ forward))
        return inside[: max(1, (len(inside) + 1) // 2)]

    def place_lights(self, rng: np.random.Generator, viewpoint: Viewpoint) -> dict[str, Any]:
        """Mount the lamp above the camera, jittered sideways, aimed at the point of interest."""
        return self._lamp.place(rng, viewpoint)

    def surface_materials(self) -> list[bpy.types.Material]:
        """Materials that weather (US): fasteners, plate and beams."""
        return list(self._mats.values())
