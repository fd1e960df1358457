"""Witness mark (paper Table 2: logical anomaly, day): torque marks on a bolted steel joint.

A painted steel splice plate is bolted with three M36 bolts onto the top plate of a box girder (the girder is
context: segmentation category 0). Each bolt has a galvanised washer, a chamfered hex nut and a stud end standing
proud of the nut. After tightening, the fitter drew an anti-loosening paint mark (red "torque seal") in one
continuous stroke across the stud end, over the nut's top and down one of its flats, over the washer and onto the
plate. The stroke is four thin paint decals, each conforming to its part and parented to it, so it moves with it.

Defect `misaligned_mark`: one nut has worked loose and turned on its bolt (25-90 degrees either way), so its
stroke segment no longer lines up with the stroke on the stud end and on the washer and plate. A hex looks the
same every 60 degrees, so the turned nut's body is drawn at the nearest whole number of flats (the nut might as
well have sat that way when it was painted) and only the paint moves: the image differs from the good one only
where the stroke was and where it now is. Mask (MVTec LOCO): the turned segment where it is, plus a transparent
ghost of the segment where the unbroken stroke should cross the nut (the bare zinc that breaks the line).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from types import ModuleType
from typing import Any

import bpy
import numpy as np

from miad.render.factors import Viewpoint, ViewpointRange
from miad.render.scenarios.common import (
    DEFECT_CATEGORY,
    NamedMaterialScene,
    Sun,
    add_object,
    box,
    ghost_material,
    material,
    mesh,
    replace_mesh,
    revolve,
    show,
)

# --- dimensions (metres): M36 structural bolt set (ISO 4032 nut, ISO 7089 washer) on a 25 mm splice plate ----------
BOLT_X = (-0.09, 0.0, 0.09)  # bolt axes along the plate's centre line (pitch 2.3 d)
MARK_AZIMUTH_DEG = (96.0, 88.0, 93.0)  # each stroke's direction (hand-drawn, roughly towards +y)
PLATE_SIZE = (0.28, 0.16, 0.025)  # splice plate; its top is z = 0
GIRDER_SIZE = (1.6, 0.46, 0.36)  # box girder under the plate (context, category 0)
STUD_RADIUS = 0.018
STUD_CHAMFER = 0.0015
STUD_PROTRUSION = 0.014  # stud end above the nut
NUT_AF = 0.055  # across flats
NUT_HEIGHT = 0.031
NUT_CHAMFER_RADIUS = 0.95 * NUT_AF / 2  # top chamfer starts here (a 30 degree cone cuts the corners)
NUT_CHAMFER_SLOPE = math.tan(math.radians(30.0))
NUT_STEPS_PER_FLAT = 8
WASHER_RADIUS = 0.033
WASHER_THICKNESS = 0.005
Z_WASHER = WASHER_THICKNESS  # washer top
Z_NUT = WASHER_THICKNESS + NUT_HEIGHT  # nut top (inside the chamfer circle)
Z_STUD = Z_NUT + STUD_PROTRUSION  # stud end

# --- the paint stroke, relative to the bolt set ------------------------------------------------------------------
MARK_WIDTH = 0.27 * NUT_AF  # ~15 mm: a broad paint-marker stroke
MARK_START = -0.35 * STUD_RADIUS  # the stroke starts just past the stud end's centre
MARK_PLATE_LENGTH = 0.9 * WASHER_RADIUS  # how far it runs onto the plate beyond the washer
MARK_OFFSET = 0.0004  # decal height above the painted surface
MARK_COLUMNS = 9  # samples across the stroke (plus the nut's corners where they fall inside it)
MARK_ROWS = 6  # samples along each smooth stretch of a part's top

# fmt: off
# --- materials: (base colour RGB, metallic, roughness, transmission) -------------------------------------------
MATERIALS = {
    "painted_steel": ((0.17, 0.20, 0.22), 0.0, 0.55, 0.0),  # grey structural coating: plate and girder
    "galvanised": ((0.62, 0.63, 0.64), 0.85, 0.42, 0.0),  # hot-dip zinc nut, washer and stud
    "mark_paint": ((0.85, 0.07, 0.02), 0.0, 0.40, 0.0),  # red torque-seal paint
}
# fmt: on
DEFECT_TYPES = ("misaligned_mark",)
TURN_DEG = (25.0, 90.0)  # how far the loose nut turned, either way

# --- viewpoint and day light ---------------------------------------------------------------------------------
LOOK_AT = (0.0, 0.0, 0.02)  # the middle bolt, at half the nut's height
VIEWPOINT_RANGE = ViewpointRange(
    r_min=0.36,
    r_max=0.50,
    theta_min=10.0,  # from the side the strokes point to (an inspector walking along the girder)
    theta_max=170.0,
    phi_min=25.0,
    phi_max=75.0,
    look_at=LOOK_AT,
    fixed_r=0.42,
    fixed_theta=62.5,  # obliquely from the strokes' side: stud, nut flat, washer and plate marks all in view
    fixed_phi=46.5,
)
CAMERA_FOV_DEG = 40.0


def _hex_reach(v: float, turn: float) -> float:
    """Distance along +x, on the line y = v, from the axis to the side of a hex nut turned by `turn` (radians).

    At `turn` = 0 one flat faces +x.
    """
    normals = turn + np.radians(np.arange(6) * 60.0)
    cos, sin = np.cos(normals), np.sin(normals)
    ahead = cos > 1e-9
    return float(np.min((NUT_AF / 2 - v * sin[ahead]) / cos[ahead]))


def _hex_corner_columns(turn: float, half_width: float) -> list[float]:
    """Cross-stroke offsets y of the turned nut's corners that lie inside the stroke on the +x side."""
    corner_radius = NUT_AF / 2 / math.cos(math.radians(30.0))
    angles = turn + np.radians(30.0 + np.arange(6) * 60.0)
    return [
        float(corner_radius * math.sin(a))
        for a in angles
        if math.cos(a) > 0 and abs(corner_radius * math.sin(a)) < half_width
    ]


def _chord(radius: float, v: float) -> float:
    """Where the line y = v leaves a circle of `radius` about the axis (x > 0)."""
    return math.sqrt(max(radius * radius - v * v, 0.0))


def _stud_height(s: float, v: float) -> float:
    """Stud end: flat top with a 45 degree chamfer."""
    return Z_STUD - max(0.0, math.hypot(s, v) - (STUD_RADIUS - STUD_CHAMFER))


def _nut_height(s: float, v: float) -> float:
    """Nut top: flat inside the chamfer circle, a 30 degree cone outside it."""
    return Z_NUT - max(0.0, math.hypot(s, v) - NUT_CHAMFER_RADIUS) * NUT_CHAMFER_SLOPE


def _column(knots: list[float], height: Callable[[float], float], drop_to: float | None) -> np.ndarray:
    """A stroke column in (s, z): along the top from knot to knot (sampled), then down the part's side."""
    points = []
    for a, b in itertools.pairwise(knots):
        for s in np.linspace(a, b, MARK_ROWS, endpoint=False):
            points.append((float(s), height(float(s))))
    points.append((knots[-1], height(knots[-1])))
    if drop_to is not None:
        points.append((knots[-1], drop_to))
    return np.asarray(points)


def _offset(path: np.ndarray, distance: float) -> np.ndarray:
    """Push a (s, z) polyline outwards (left of its direction of travel) by `distance`, mitred at the bends."""
    seg = np.diff(path, axis=0)
    length = np.linalg.norm(seg, axis=1)
    normals = np.stack([-seg[:, 1], seg[:, 0]], axis=1) / np.maximum(length, 1e-12)[:, None]
    valid = length > 1e-9
    out = path.copy()
    for i in range(len(path)):
        before = [normals[j] for j in range(i - 1, -1, -1) if valid[j]][:1]
        after = [normals[j] for j in range(i, len(seg)) if valid[j]][:1]
        near = before + after
        if not near:
            continue
        if len(near) == 2:
            a, b = near
            miter = (a + b) / max(1.0 + float(a @ b), 0.3)
        else:
            miter = near[0]
        out[i] = path[i] + distance * miter
    return out


def _ribbon(name: str, piece: Callable[[float], np.ndarray], extra_columns: tuple | list = ()) -> bpy.types.Mesh:
    """A paint decal: columns across the stroke (y), each a conforming (s, z) path from `piece(v)`."""
    half = MARK_WIDTH / 2
    vs = sorted({*np.linspace(-half, half, MARK_COLUMNS).round(9).tolist(), *extra_columns})
    columns = [_offset(piece(v), MARK_OFFSET) for v in vs]
    rows = len(columns[0])
    verts = [(float(s), float(v), float(z)) for v, col in zip(vs, columns, strict=True) for s, z in col]
    faces = [
        (c * rows + r, c * rows + r + 1, (c + 1) * rows + r + 1, (c + 1) * rows + r)
        for c in range(len(vs) - 1)
        for r in range(rows - 1)
    ]
    return mesh(name, verts, faces, smooth=True)


def _stud_piece(v: float) -> np.ndarray:
    """Stroke over the stud end, from near its centre, over the chamfer and down to the nut."""
    knots = [MARK_START, _chord(STUD_RADIUS - STUD_CHAMFER, v), _chord(STUD_RADIUS, v)]
    return _column(knots, lambda s: _stud_height(s, v), Z_NUT)


def _nut_piece(turn: float) -> Callable[[float], np.ndarray]:
    """Stroke over the nut's top (flat, then chamfer) and down its side, for a nut turned by `turn`."""

    def piece(v: float) -> np.ndarray:
        start, end = _chord(STUD_RADIUS, v), _hex_reach(v, turn)
        knots = [start, min(max(_chord(NUT_CHAMFER_RADIUS, v), start), end), end]
        return _column(knots, lambda s: _nut_height(s, v), Z_WASHER)

    return piece


def _washer_piece(v: float) -> np.ndarray:
    """Stroke over the washer's rim, from the (untouched) nut's flat to the washer edge and down."""
    return _column([_hex_reach(v, 0.0), _chord(WASHER_RADIUS, v)], lambda s: Z_WASHER, 0.0)


def _plate_piece(v: float) -> np.ndarray:
    """Stroke on the plate, from the washer's edge, ending in a rounded tip."""
    half = MARK_WIDTH / 2
    tip = WASHER_RADIUS + MARK_PLATE_LENGTH - half * (1 - math.sqrt(max(1 - (v / half) ** 2, 0.0)))
    return _column([_chord(WASHER_RADIUS, v), tip], lambda s: 0.0, None)


def _nut_mesh(name: str) -> bpy.types.Mesh:
    """Hex nut (one flat facing +x) with its top corners cut by a 30 degree chamfer cone."""
    angles = np.radians(np.linspace(-30.0, 330.0, 6 * NUT_STEPS_PER_FLAT, endpoint=False))
    reach = NUT_AF / 2 / np.cos((angles + math.radians(30.0)) % math.radians(60.0) - math.radians(30.0))
    verts = [(0.0, 0.0, Z_NUT), (0.0, 0.0, Z_WASHER)]
    for a, r in zip(angles, reach, strict=True):
        c, s = math.cos(a), math.sin(a)
        top = _nut_height(r, 0.0)
        ring = ((NUT_CHAMFER_RADIUS, Z_NUT), (r, top), (r, Z_WASHER))
        verts += [(rad * c, rad * s, z) for rad, z in ring]
    n = len(angles)
    faces = []
    for i in range(n):
        a, b = 2 + 3 * i, 2 + 3 * ((i + 1) % n)
        faces += [(0, a, b), (a, a + 1, b + 1, b), (a + 1, a + 2, b + 2, b + 1), (1, b + 2, a + 2)]
    return mesh(name, verts, faces, smooth=False)


class WitnessMarkScene(NamedMaterialScene):
    """Builds the bolted joint once; per image it turns one nut (or none) and places the sun."""

    key = "witness_mark"
    defect_types = DEFECT_TYPES
    viewpoint_range = VIEWPOINT_RANGE
    camera_fov_deg = CAMERA_FOV_DEG
    defect_category_id = DEFECT_CATEGORY
    light = "day"
    object_radius = 0.18  # metres: the splice plate around the middle bolt

    def __init__(self, bproc: ModuleType) -> None:
        self._bproc = bproc
        self._mats = {name: material(bproc, name, spec) for name, spec in MATERIALS.items()}

        # Splice plate (the object's base) on the box girder (context, category 0)
        plate = self._add("splice_plate", box("splice_plate", PLATE_SIZE, (0, 0, -PLATE_SIZE[2] / 2)), "painted_steel")
        girder_centre = (0.0, 0.0, -PLATE_SIZE[2] - GIRDER_SIZE[2] / 2)
        self._add("girder", box("girder", GIRDER_SIZE, girder_centre), "painted_steel", category=0)

        # Bolt sets: washer, nut, stud; each carries its own stretch of the paint stroke
        stud_profile = (
            (1e-4, -PLATE_SIZE[2]),
            (STUD_RADIUS, -PLATE_SIZE[2]),
            (STUD_RADIUS, Z_STUD - STUD_CHAMFER),
            (STUD_RADIUS - STUD_CHAMFER, Z_STUD),
            (1e-4, Z_STUD),
        )
        washer_profile = ((1e-4, 0.0), (WASHER_RADIUS, 0.0), (WASHER_RADIUS, Z_WASHER), (1e-4, Z_WASHER))
        part_meshes = {
            "stud": (revolve("stud", stud_profile, 48), _ribbon("mark_stud", _stud_piece)),
            "nut": (_nut_mesh("nut"), _ribbon("mark_nut", _nut_piece(0.0), _hex_corner_columns(0.0, MARK_WIDTH / 2))),
            "washer": (revolve("washer", washer_profile, 64), _ribbon("mark_washer", _washer_piece)),
        }
        plate_mark = _ribbon("mark_plate", _plate_piece)
        self._yaw = [math.radians(a) for a in MARK_AZIMUTH_DEG]
        self._nuts, self._nut_marks = [], []
        for i, (x, yaw) in enumerate(zip(BOLT_X, self._yaw, strict=True)):
            for part, (part_mesh, mark_mesh) in part_meshes.items():
                body = self._add(f"{part}_{i}", part_mesh, "galvanised", (x, 0.0, 0.0))
                body.rotation_euler = (0.0, 0.0, yaw)
                mark = self._add(f"mark_{part}_{i}", mark_mesh, "mark_paint")
                mark.parent = body
                if part == "nut":
                    self._nuts.append(body)
                    self._nut_marks.append(mark)
            mark = self._add(f"mark_plate_{i}", plate_mark, "mark_paint", (x, 0.0, 0.0))
            mark.rotation_euler = (0.0, 0.0, yaw)
            mark.parent = plate

        # The turned nut's stroke segment (re-shaped per image) and, where the unbroken stroke should run over the
        # nut, a transparent ghost of the segment: both children of the turned nut while shown
        self._turned_mark = self._add(
            "mark_nut_turned", bpy.data.meshes.new("mark_nut_turned"), "mark_paint", category=DEFECT_CATEGORY
        )
        ghost_mesh = _ribbon("mark_ghost", _nut_piece(0.0), _hex_corner_columns(0.0, MARK_WIDTH / 2))
        self._ghost = add_object(
            "mark_ghost", ghost_mesh, ghost_material("witness_mark_ghost"), category=DEFECT_CATEGORY
        )
        self._ghost.location = (0.0, 0.0, MARK_OFFSET)  # just above the turned segment where the two cross
        self._turned: int | None = None
        self.clear_defect()

        self._sun = Sun(bproc)

    def defect_objects(self) -> list[bpy.types.Object]:
        """Objects whose visible pixels are the defect mask: the turned stroke segment and its ghost."""
        return [self._turned_mark, self._ghost] if self._turned is not None else []

    def clear_defect(self) -> None:
        """Every nut as tightened: all strokes continuous."""
        for mark in self._nut_marks:
            show(mark, True)
        for obj in (self._turned_mark, self._ghost):
            show(obj, False)
        self._turned = None

    def place_defect(self, rng: np.random.Generator, defect_type: str, viewpoint: Viewpoint) -> dict[str, Any]:
        """Turn one nut on its bolt so its stroke segment breaks away from the rest; return what was done.

        The nut turns by `turn_deg`; its hex is drawn where a whole number of flats would put it (a hex looks the same
        every 60 degrees), so only the paint changes: the stroke segment now crosses the nut `turn_deg` away from the
        rest of the stroke (as if the fitter had drawn it across the nut off the middle of a flat).
        """
        if defect_type not in DEFECT_TYPES:
            raise ValueError(f"{self.key} has no defect type {defect_type!r}; known: {list(DEFECT_TYPES)}")
        self.clear_defect()
        bolt = int(rng.integers(len(BOLT_X)))
        turn_deg = float(rng.uniform(*TURN_DEG)) * (1.0 if rng.random() < 0.5 else -1.0)
        turn = math.radians(turn_deg)

        # The segment in a frame turned with the nut: there the nut's flats lie `turn` back
        segment = _ribbon("mark_nut_turned", _nut_piece(-turn), _hex_corner_columns(-turn, MARK_WIDTH / 2))
        replace_mesh(self._turned_mark, segment, self._mats["mark_paint"])
        self._turned_mark.rotation_euler = (0.0, 0.0, turn)
        for obj in (self._turned_mark, self._ghost):
            obj.parent = self._nuts[bolt]
            show(obj, True)
        show(self._nut_marks[bolt], False)
        self._turned = bolt
        bpy.context.view_layer.update()
        return {"type": defect_type, "bolt": bolt, "turn_deg": turn_deg}

    def place_lights(self, rng: np.random.Generator, viewpoint: Viewpoint) -> dict[str, Any]:
        """A sun on the camera's side of the sky."""
        return self._sun.place(rng, viewpoint)

    def surface_materials(self) -> list[bpy.types.Material]:
        """Materials that weather (US): the painted steel and the galvanised bolt sets; not the mark paint."""
        return [mat for name, mat in self._mats.items() if name != "mark_paint"]
