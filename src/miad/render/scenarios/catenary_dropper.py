"""Catenary dropper (paper Table 2: logical anomaly, day): a stretch of railway overhead contact line seen from below.

A bronze messenger wire sags between supports above a grooved copper contact wire; five droppers (stranded bronze
wires with crimped sleeves) hang the contact wire from the messenger, each with a cast messenger clamp on top and a
contact-wire clamp gripping the wire's grooves at the bottom. At one end a cantilever (inclined tube, stay tube,
porcelain insulators, registration tube and steady arm) holds both wires from a steel mast (background). The camera
is an inspection vehicle's roof or track-side camera looking up at the wires. Day: a sun, and the world is the sky.

Defects, masked after MVTec LOCO (a missing part where it should be, a displaced part where it is):
- `missing_dropper`: one dropper is gone with both clamps; a transparent ghost of it keeps the mask in place.
- `broken_dropper`: one dropper wire is snapped: a kinked upper remnant hangs from the messenger clamp, a short lower
  stub droops over beside the contact wire, the middle is missing. Mask: both remnants plus the ghost of the intact
  wire (where it should be); the clamps are intact and stay object pixels.
- `loose_clamp`: one contact-wire clamp has slipped along the wire and sits askew; the dropper wire runs slanted
  from its messenger clamp to it. Mask: the displaced clamp and the slanted wire.
A dropper wire is thinner than a pixel at 128 px, and the segmentation samples each pixel once, at its centre: so a
defective wire's mask also gets a transparent sleeve (ghost material) at least about a pixel wide, see `_mask_radius`.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import bpy
import numpy as np

from miad.render.factors import Viewpoint, ViewpointRange
from miad.render.scenarios.common import (
    BACKGROUND_CATEGORY,
    DEFECT_CATEGORY,
    OBJECT_CATEGORY,
    SMALL_SEGMENTS,
    NamedMaterialScene,
    Sun,
    add_object,
    align_z,
    camera_frame,
    extrude,
    ghost_material,
    material,
    mesh,
    replace_mesh,
    revolve,
    show,
)

# --- dimensions (metres); x runs along the track, z = 0 is the contact wire's axis, the camera side is +y ------
N_DROPPERS = 5
DROPPER_SPACING = 1.2  # shortened from a real 5-10 m so that several droppers share a frame
DROPPER_X = tuple((i - (N_DROPPERS - 1) / 2) * DROPPER_SPACING for i in range(N_DROPPERS))
WIRE_HALF_LENGTH = 12.0  # both wires run out of frame on either side
SUPPORT_X = -3.6  # the cantilever, one dropper spacing beyond the last dropper
SPAN = 48.0  # between supports; the messenger sags towards mid-span
SYSTEM_HEIGHT_SUPPORT = 1.40  # messenger above contact wire at the support
SYSTEM_HEIGHT_MIDSPAN = 0.90
CONTACT_RADIUS = 0.0074  # AC-150 grooved contact wire, ~14.8 mm
CONTACT_GROOVE_DEG = (55.0, 125.0)  # groove centres, from +y around the profile
CONTACT_GROOVE_HALF_DEG = 13.0
CONTACT_GROOVE_DEPTH = 0.0024
MESSENGER_RADIUS = 0.007  # Bz II 120 stranded bronze, 14 mm
DROPPER_RADIUS = 0.004  # stranded bronze dropper with its strand lay (a real 10 mm2 wire is ~5 mm: drawn thicker)
SLEEVE_RADIUS = 0.0065  # crimped sleeve over the thimble at each end of the wire
SLEEVE_LENGTH = 0.05
WIRE_END_GAP = 0.06  # wire end to the wire axis it hangs from (clamp and lug in between)
TUBE_RADIUS = 0.027  # cantilever tubes, 55 mm
STEADY_ARM_RADIUS = 0.014
MAST_Y = -3.0  # mast centre; the camera stays on the +y side, so the mast is background
MAST_Z = (-5.3, 2.6)  # rail level to mast top
MAST_SECTION = 0.26  # H-beam, square envelope

# fmt: off
# Cast bronze clamps as (size xyz, centre xyz) boxes in clamp-local coordinates: origin on the wire's axis
CONTACT_CLAMP_BOXES = (
    ((0.060, 0.036, 0.033), (0.0, 0.0, 0.0155)),  # jaws gripping both grooves, above the running surface
    ((0.030, 0.050, 0.010), (0.0, 0.0, 0.017)),  # bolt and nut across the jaws
    ((0.012, 0.009, 0.028), (0.0, 0.0, 0.045)),  # lug carrying the dropper's thimble
)
MESSENGER_CLAMP_BOXES = (
    ((0.048, 0.030, 0.044), (0.0, 0.0, -0.008)),  # body around the messenger
    ((0.026, 0.046, 0.010), (0.0, 0.0, -0.022)),  # bolt and nut
    ((0.012, 0.009, 0.026), (0.0, 0.0, -0.042)),  # lug
)
# Porcelain long-rod insulator along its own z: closed (radius, z) loop with alternating sheds
INSULATOR_LENGTH = 0.46
INSULATOR_PROFILE = ((0.001, 0.0), (0.030, 0.0), (0.030, 0.05),
                     *[(r, 0.05 + 0.05 * k + dz) for k in range(7)
                       for r, dz in (((0.075 if k % 2 else 0.060), 0.010), ((0.075 if k % 2 else 0.060), 0.016),
                                     (0.033, 0.030), (0.033, 0.050))],
                     (0.030, INSULATOR_LENGTH - 0.04), (0.030, INSULATOR_LENGTH), (0.001, INSULATOR_LENGTH))
# Cantilever at x = SUPPORT_X, in (y, z): tubes from start to end
CANTILEVER_TUBES = {
    "diagonal_tube": ((-2.86, 0.15), (0.35, 1.70), TUBE_RADIUS),  # inclined main tube, carries the messenger
    "stay_tube": ((-2.86, 2.25), (0.30, 1.73), 0.020),  # holds the diagonal tube's end up
    "registration_tube": ((-2.25, 0.445), (1.05, 0.40), 0.022),
    "steady_arm": ((1.00, 0.37), (0.00, 0.02), STEADY_ARM_RADIUS),  # pulls the contact wire off-centre
}
INSULATOR_AT = {"diagonal_tube": 0.16, "stay_tube": 0.16}  # insulator start along the tube (fraction)
# fmt: on

# --- materials: (base colour RGB, metallic, roughness, transmission) -------------------------------------------
MATERIALS = {
    "contact_copper": ((0.42, 0.25, 0.15), 0.9, 0.55, 0.0),  # hard-drawn copper, darkened by oxide
    "messenger_bronze": ((0.36, 0.29, 0.21), 0.85, 0.60, 0.0),
    "dropper_bronze": ((0.40, 0.30, 0.20), 0.85, 0.60, 0.0),
    "clamp_bronze": ((0.62, 0.47, 0.29), 0.9, 0.40, 0.0),  # fresh-looking cast bronze
    "aluminium": ((0.72, 0.73, 0.74), 0.9, 0.40, 0.0),  # cantilever tubes
    "porcelain": ((0.33, 0.17, 0.09), 0.0, 0.20, 0.0),  # brown glazed insulators
    "galvanised": ((0.55, 0.56, 0.57), 0.8, 0.55, 0.0),  # the mast
}
BACKGROUND_MATERIALS = ("galvanised",)  # the mast is context, not the object of interest
DEFECT_TYPES = ("missing_dropper", "broken_dropper", "loose_clamp")

# --- defects, relative to the dropper ----------------------------------------------------------------------------
BROKEN_UPPER_FRACTION = (0.35, 0.60)  # share of the wire still hanging from the messenger clamp
BROKEN_LOWER_FRACTION = (0.12, 0.22)  # share of the wire left on the contact-wire clamp
BROKEN_KINK_DEG = (25.0, 55.0)  # bend of the upper remnant at its kink
BROKEN_KINK_AT = (0.45, 0.75)  # kink position along the upper remnant
BROKEN_FRAY_SCALE = 1.8  # the snapped end splays out a little
LOOSE_SLIDE_FRACTION = (0.20, 0.35)  # clamp slip along the contact wire, share of the dropper spacing
LOOSE_YAW_DEG = (10.0, 30.0)  # the loose clamp sits askew on the wire
VISIBLE_MARGIN = 0.92  # a defect's dropper lies within this share of the half field of view
MASK_MIN_WIDTH_PX = 1.05  # a defective wire's mask is at least this wide in the image (see `_mask_radius`)

# --- viewpoint and light ----------------------------------------------------------------------------------------
LOOK_AT = (0.25, 0.0, 0.6)  # beside the middle dropper: on the optical axis it would always straddle two pixels
VIEWPOINT_RANGE = ViewpointRange(
    r_min=2.6,
    r_max=3.8,
    theta_min=40.0,  # camera beside the track (+y), from oblique along the line to square on
    theta_max=140.0,
    phi_min=-40.0,  # below the wires: roof camera (steep) to track-side camera (shallow)
    phi_max=-8.0,
    look_at=LOOK_AT,
    fixed_theta=70.5,
    fixed_phi=-22.5,
)
CAMERA_FOV_DEG = 40.0
_UP = np.array([0.0, 0.0, 1.0])


def messenger_height(x: float | np.ndarray) -> float | np.ndarray:
    """Messenger axis above the contact wire: a parabolic sag in each span, highest at the supports."""
    u = (np.abs(np.asarray(x) - SUPPORT_X) % SPAN - SPAN / 2) / (SPAN / 2)
    return SYSTEM_HEIGHT_MIDSPAN + (SYSTEM_HEIGHT_SUPPORT - SYSTEM_HEIGHT_MIDSPAN) * u**2


def _tube_vf(points: np.ndarray, radius: float | np.ndarray, segments: int = 8) -> tuple[list, list]:
    """Vertices and faces of a capped tube swept along a polyline (parallel-transported rings)."""
    pts = np.asarray(points, dtype=float)  # (P, 3)
    radii = np.broadcast_to(np.asarray(radius, dtype=float), (len(pts),))
    tangents = np.gradient(pts, axis=0)
    tangents /= np.linalg.norm(tangents, axis=1, keepdims=True)
    helper = np.array([1.0, 0.0, 0.0]) if abs(tangents[0, 2]) > 0.9 else np.array([0.0, 0.0, 1.0])
    normal = np.cross(tangents[0], helper)
    normal /= np.linalg.norm(normal)
    angles = np.linspace(0.0, 2 * math.pi, segments, endpoint=False)
    verts = []
    for p, t, r in zip(pts, tangents, radii, strict=True):
        normal = normal - np.dot(normal, t) * t
        normal /= np.linalg.norm(normal)
        binormal = np.cross(t, normal)
        verts += [tuple(p + r * (math.cos(a) * normal + math.sin(a) * binormal)) for a in angles]
    n, s = len(pts), segments
    faces = [
        (k * s + j, k * s + (j + 1) % s, (k + 1) * s + (j + 1) % s, (k + 1) * s + j)
        for k in range(n - 1)
        for j in range(s)
    ]
    faces += [tuple(range(s - 1, -1, -1)), tuple(range((n - 1) * s, n * s))]
    return verts, faces


def _box_vf(size: tuple, centre: tuple) -> tuple[list, list]:
    """Vertices and faces of an axis-aligned box."""
    half, c = np.asarray(size) / 2, np.asarray(centre)
    verts = [tuple(c + half * np.array([sx, sy, sz])) for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]
    faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    return verts, faces


def _merged(name: str, parts: list[tuple[list, list]], smooth: bool) -> bpy.types.Mesh:
    """One mesh from several (vertices, faces) parts."""
    verts, faces = [], []
    for part_verts, part_faces in parts:
        faces += [tuple(i + len(verts) for i in face) for face in part_faces]
        verts += list(part_verts)
    return mesh(name, verts, faces, smooth=smooth)


def _clamp_mesh(name: str, boxes: tuple, sleeve_z: tuple[float, float]) -> bpy.types.Mesh:
    """A clamp with its bolt and lug, plus the dropper's crimped sleeve, in clamp-local coordinates."""
    sleeve = np.array([[0.0, 0.0, sleeve_z[0]], [0.0, 0.0, sleeve_z[1]]])
    return _merged(name, [_box_vf(*b) for b in boxes] + [_tube_vf(sleeve, SLEEVE_RADIUS)], smooth=False)


class CatenaryDropperScene(NamedMaterialScene):
    """Builds the overhead line once; per image it removes, breaks or loosens one dropper (or not) and sets the sun."""

    key = "catenary_dropper"
    defect_types = DEFECT_TYPES
    viewpoint_range = VIEWPOINT_RANGE
    camera_fov_deg = CAMERA_FOV_DEG
    defect_category_id = DEFECT_CATEGORY
    light = "day"
    object_radius = 3.0  # metres: the five droppers and the wires around the middle one

    def __init__(self, bproc: ModuleType) -> None:
        self._bproc = bproc
        self._mats = {name: material(bproc, name, spec) for name, spec in MATERIALS.items()}
        self._ghost = ghost_material("dropper_ghost")

        self._build_wires()
        self._build_cantilever()

        # Droppers: messenger clamp (with upper sleeve), wire, contact-wire clamp (with lower sleeve), a ghost of each
        upper_mesh = _clamp_mesh(
            "messenger_clamp", MESSENGER_CLAMP_BOXES, (-WIRE_END_GAP - SLEEVE_LENGTH, -WIRE_END_GAP)
        )
        lower_mesh = _clamp_mesh("contact_clamp", CONTACT_CLAMP_BOXES, (WIRE_END_GAP, WIRE_END_GAP + SLEEVE_LENGTH))
        wire_mesh = mesh("dropper_wire", *_tube_vf(np.array([[0, 0, 0.0], [0, 0, 1.0]]), DROPPER_RADIUS), smooth=True)
        self._parts: list[dict[str, bpy.types.Object]] = []
        self._ghosts: list[dict[str, bpy.types.Object]] = []
        for i in range(N_DROPPERS):
            parts = {
                "upper": self._add(f"messenger_clamp_{i}", upper_mesh, "clamp_bronze"),
                "wire": self._add(f"dropper_wire_{i}", wire_mesh, "dropper_bronze"),
                "lower": self._add(f"contact_clamp_{i}", lower_mesh, "clamp_bronze"),
            }
            ghosts = {}
            for part, obj in parts.items():
                data = obj.data.copy()
                data.materials.clear()
                ghosts[part] = add_object(f"ghost_{obj.name}", data, self._ghost, category=DEFECT_CATEGORY)
            self._parts.append(parts)
            self._ghosts.append(ghosts)
            for group in (parts, ghosts):
                self._pose(group, i)

        # Broken dropper remnants and their mask sleeves (transparent, at least a pixel wide): filled per image
        self._remnants = [
            self._add(f"broken_{end}", bpy.data.meshes.new(f"broken_{end}"), "dropper_bronze", category=DEFECT_CATEGORY)
            for end in ("upper", "lower")
        ]
        self._remnant_masks = [
            add_object(f"mask_broken_{end}", bpy.data.meshes.new(f"mask_{end}"), self._ghost, category=DEFECT_CATEGORY)
            for end in ("upper", "lower")
        ]
        self.clear_defect()
        self._sun = Sun(bproc)

    def _build_wires(self) -> None:
        """Contact wire (grooved profile, level) and messenger (sagging), both running out of frame."""
        angles = np.linspace(0.0, 2 * math.pi, 48, endpoint=False)
        radius = np.full(angles.shape, CONTACT_RADIUS)
        for centre in CONTACT_GROOVE_DEG:
            off = np.abs(np.degrees(angles) - centre) / CONTACT_GROOVE_HALF_DEG
            radius -= CONTACT_GROOVE_DEPTH * np.clip(1.0 - off**2, 0.0, None)
        section = [(float(r * math.cos(a)), float(r * math.sin(a))) for r, a in zip(radius, angles, strict=True)]
        self._add("contact_wire", extrude("contact_wire", section, 2 * WIRE_HALF_LENGTH), "contact_copper")
        xs = np.union1d(np.linspace(-WIRE_HALF_LENGTH, WIRE_HALF_LENGTH, 97), [SUPPORT_X])
        path = np.stack([xs, np.zeros_like(xs), messenger_height(xs)], axis=1)
        self._add(
            "messenger", mesh("messenger", *_tube_vf(path, MESSENGER_RADIUS, 10), smooth=True), "messenger_bronze"
        )

    def _build_cantilever(self) -> None:
        """Tubes, insulators, messenger support and steady-arm clamp at the support; the mast as background."""
        for name, (start, end, radius) in CANTILEVER_TUBES.items():
            a, b = np.array([SUPPORT_X, *start]), np.array([SUPPORT_X, *end])
            self._add(name, mesh(name, *_tube_vf(np.stack([a, b]), radius, 16), smooth=True), "aluminium")
            if name in INSULATOR_AT:
                at = a + INSULATOR_AT[name] * (b - a)
                obj = self._add(
                    f"{name}_insulator", revolve(f"{name}_ins", INSULATOR_PROFILE, SMALL_SEGMENTS), "porcelain"
                )
                align_z(obj, at, at + (b - a) / np.linalg.norm(b - a))
        h = float(messenger_height(SUPPORT_X))
        support = _merged(
            "messenger_support",
            [_box_vf((0.08, 0.05, 0.10), (SUPPORT_X, 0.0, h + 0.06)), _box_vf((0.12, 0.04, 0.03), (SUPPORT_X, 0.0, h))],
            smooth=False,
        )
        self._add("messenger_support", support, "clamp_bronze")
        self._add(
            "steady_arm_clamp",
            mesh("sa_clamp", *_box_vf((0.07, 0.04, 0.04), (SUPPORT_X, 0.0, 0.018)), False),
            "clamp_bronze",
        )
        # Mast: an H-beam (two flanges and a web), background
        zc, zl = sum(MAST_Z) / 2, MAST_Z[1] - MAST_Z[0]
        flange, web = (0.26, 0.016, zl), (0.016, MAST_SECTION, zl)
        beam = [_box_vf(flange, (SUPPORT_X, MAST_Y + s * MAST_SECTION / 2, zc)) for s in (-1, 1)]
        beam.append(_box_vf(web, (SUPPORT_X, MAST_Y, zc)))
        self._add("mast", _merged("mast", beam, smooth=False), "galvanised", category=BACKGROUND_CATEGORY)

    def _ends(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Dropper i's clamp anchors: on the contact wire's axis and on the messenger's axis."""
        x = DROPPER_X[i]
        return np.array([x, 0.0, 0.0]), np.array([x, 0.0, float(messenger_height(x))])

    def _pose(
        self, group: dict[str, bpy.types.Object], i: int, slide: float = 0.0, yaw: float = 0.0, radius: float = 0.0
    ) -> None:
        """Place dropper i's clamps and wire; the contact-wire clamp slid by `slide` metres and turned by `yaw`.

        `radius` thickens the wire (for a ghost: the mask's width); the real radius if smaller.
        """
        bottom, top = self._ends(i)
        slope = math.atan(float(messenger_height(DROPPER_X[i] + 1e-3) - messenger_height(DROPPER_X[i])) / 1e-3)
        group["upper"].location = tuple(top)
        group["upper"].rotation_euler = (0.0, -slope, 0.0)
        lower = bottom + np.array([slide, 0.0, 0.0])
        group["lower"].location = tuple(lower)
        group["lower"].rotation_euler = (0.0, 0.0, yaw)
        a, b = lower + _UP * WIRE_END_GAP, top - _UP * WIRE_END_GAP
        align_z(group["wire"], a, b)
        thickness = max(radius, DROPPER_RADIUS) / DROPPER_RADIUS
        group["wire"].scale = (thickness, thickness, float(np.linalg.norm(b - a)))

    def defect_objects(self) -> list[bpy.types.Object]:
        """Objects whose visible pixels are the defect mask (visible defect-category objects)."""
        objs = (
            self._remnants
            + self._remnant_masks
            + [o for g in self._ghosts for o in g.values()]
            + [o for p in self._parts for o in p.values()]
        )
        return [o for o in objs if o["category_id"] == DEFECT_CATEGORY and not o.hide_render]

    def clear_defect(self) -> None:
        """Every dropper intact and in place."""
        for i, (parts, ghosts) in enumerate(zip(self._parts, self._ghosts, strict=True)):
            self._pose(parts, i)
            for obj in parts.values():
                obj["category_id"] = OBJECT_CATEGORY
                show(obj, True)
            for obj in ghosts.values():
                show(obj, False)
        for obj in self._remnants + self._remnant_masks:
            show(obj, False)

    def _visible_droppers(self, viewpoint: Viewpoint) -> list[int]:
        """Droppers whose both ends lie well inside the camera's field of view (all of them if none does)."""
        forward, side, up = camera_frame(viewpoint)
        cam = np.asarray(viewpoint.location)
        limit = VISIBLE_MARGIN * math.tan(math.radians(CAMERA_FOV_DEG) / 2)
        inside = []
        for i in range(N_DROPPERS):
            ok = True
            for p in self._ends(i):
                d = p - cam
                depth = float(d @ forward)
                ok &= depth > 0 and abs(d @ side) / depth < limit and abs(d @ up) / depth < limit
            if ok:
                inside.append(i)
        return inside or list(range(N_DROPPERS))

    def place_defect(self, rng: np.random.Generator, defect_type: str, viewpoint: Viewpoint) -> dict[str, Any]:
        """Remove, break or loosen one dropper the camera sees; return what was done."""
        if defect_type not in DEFECT_TYPES:
            raise ValueError(f"{self.key} has no defect type {defect_type!r}; known: {list(DEFECT_TYPES)}")
        self.clear_defect()
        candidates = self._visible_droppers(viewpoint)
        i = candidates[int(rng.integers(len(candidates)))]
        parts, ghosts = self._parts[i], self._ghosts[i]
        mask_radius = self._mask_radius(viewpoint, i)
        record: dict[str, Any] = {"type": defect_type, "dropper": i}
        if defect_type == "missing_dropper":
            self._pose(ghosts, i, radius=mask_radius)
            for part in parts:
                show(parts[part], False)
                show(ghosts[part], True)
        elif defect_type == "broken_dropper":
            record.update(self._break(rng, i, mask_radius))
            self._pose(ghosts, i, radius=mask_radius)
            show(parts["wire"], False)
            show(ghosts["wire"], True)
        else:
            fraction = float(rng.uniform(*LOOSE_SLIDE_FRACTION))
            slide = fraction * DROPPER_SPACING * float(rng.choice((-1.0, 1.0)))
            yaw = math.radians(float(rng.uniform(*LOOSE_YAW_DEG))) * float(rng.choice((-1.0, 1.0)))
            self._pose(parts, i, slide, yaw)
            self._pose(ghosts, i, slide, yaw, radius=mask_radius)
            for part in ("wire", "lower"):
                parts[part]["category_id"] = DEFECT_CATEGORY
            show(ghosts["wire"], True)
            record.update({"slide_m": slide, "slide_fraction": fraction, "yaw_deg": math.degrees(yaw)})
        bpy.context.view_layer.update()
        return record

    def _mask_radius(self, viewpoint: Viewpoint, i: int) -> float:
        """Radius of a transparent sleeve around dropper i's wire that is MASK_MIN_WIDTH_PX pixels wide in the image.

        The segmentation samples each pixel once, at its centre: a wire thinner than a pixel would leave a broken,
        dotted mask (or none) although it shades the pixels it crosses. The sleeve marks those pixels.
        """
        cam = np.asarray(viewpoint.location)
        distance = max(float(np.linalg.norm(end - cam)) for end in self._ends(i))  # the far end's pixels are largest
        pixel = 2.0 * distance * math.tan(math.radians(CAMERA_FOV_DEG) / 2) / bpy.context.scene.render.resolution_x
        return max(DROPPER_RADIUS, MASK_MIN_WIDTH_PX * pixel / 2)

    def _break(self, rng: np.random.Generator, i: int, mask_radius: float) -> dict[str, Any]:
        """Build the two remnants of dropper i's snapped wire: a kinked upper piece and a drooping lower stub."""
        bottom, top = self._ends(i)
        a, b = bottom + _UP * WIRE_END_GAP, top - _UP * WIRE_END_GAP
        length = float(b[2] - a[2])
        upper = float(rng.uniform(*BROKEN_UPPER_FRACTION)) * length
        lower = float(rng.uniform(*BROKEN_LOWER_FRACTION)) * length
        kink_at = float(rng.uniform(*BROKEN_KINK_AT))
        kink = math.radians(float(rng.uniform(*BROKEN_KINK_DEG)))
        heading = float(rng.uniform(0.0, 2 * math.pi))  # which way the remnants bend
        across = np.array([math.cos(heading), math.sin(heading), 0.0])

        # Upper remnant: straight down to the kink, then bent off at `kink` and slightly curled towards its end
        t = np.linspace(0.0, 1.0, 14)
        s = t * upper
        bend = np.clip((s - kink_at * upper) / (upper * (1 - kink_at)), 0.0, 1.0)
        angle = kink * np.minimum(1.0, 4.0 * bend) + 0.4 * kink * bend  # sharp kink, then a little curl
        step = upper / (len(t) - 1)
        dirs = np.sin(angle)[:, None] * across + np.cos(angle)[:, None] * -_UP
        pts = b + np.concatenate([[np.zeros(3)], np.cumsum(dirs[1:] * step, axis=0)])
        radii = DROPPER_RADIUS * (1 + (BROKEN_FRAY_SCALE - 1) * np.clip((t - 0.9) / 0.1, 0, 1))
        self._set_remnant(0, pts, radii, mask_radius)

        # Lower stub: up from the clamp's sleeve, then bowed over and drooping beside the contact wire
        u = np.linspace(0.0, 1.0, 10)
        theta = 0.5 * math.pi * 1.5 * u  # from pointing up to pointing ~45 degrees down
        step = lower / (len(u) - 1)
        dirs = np.sin(theta)[:, None] * (-across) + np.cos(theta)[:, None] * _UP
        pts = a + np.concatenate([[np.zeros(3)], np.cumsum(dirs[1:] * step, axis=0)])
        radii = DROPPER_RADIUS * (1 + (BROKEN_FRAY_SCALE - 1) * np.clip((u - 0.85) / 0.15, 0, 1))
        self._set_remnant(1, pts, radii, mask_radius)
        return {
            "upper_fraction": upper / length,
            "lower_fraction": lower / length,
            "kink_deg": math.degrees(kink),
            "heading_deg": math.degrees(heading),
        }

    def _set_remnant(self, k: int, points: np.ndarray, radii: np.ndarray, mask_radius: float) -> None:
        """Give remnant k its wire along `points`, and its mask sleeve at least `mask_radius` thick; show both."""
        wire = mesh(f"broken_{k}", *_tube_vf(points, radii), smooth=True)
        replace_mesh(self._remnants[k], wire, self._mats["dropper_bronze"])
        sleeve = mesh(f"mask_broken_{k}", *_tube_vf(points, np.maximum(radii, mask_radius)), smooth=True)
        replace_mesh(self._remnant_masks[k], sleeve, self._ghost)
        show(self._remnants[k], True)
        show(self._remnant_masks[k], True)

    def place_lights(self, rng: np.random.Generator, viewpoint: Viewpoint) -> dict[str, Any]:
        """A sun on the camera's side of the sky; the world (sky) is the fill light."""
        return self._sun.place(rng, viewpoint)

    def surface_materials(self) -> list[bpy.types.Material]:
        """Materials that weather (US): wires, droppers, clamps, cantilever; not the mast (background) or ghosts."""
        return [mat for name, mat in self._mats.items() if name not in BACKGROUND_MATERIALS]
