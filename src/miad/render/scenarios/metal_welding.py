"""Metal welding (paper Table 2: surface anomaly, day): a circumferential butt weld joining two steel pipe sections.

Two DN250 carbon-steel pipe sections (273 mm outside diameter) are welded end to end and rest on a pipe rack: two
I-beam crossmembers on steel posts, each with a saddle under the pipe, and a smaller line further back. The
weld's cap pass is a raised bead ring with ripples (a revolved bead profile whose height is modulated along the
circumference in chevron arcs), heat-tinted darker than the pipe; beside it the heat-affected zone shades from a
bluish bronze through straw into the bright brushed band of the weld preparation, then the dark mill scale.
Day: the renderer's world (sky and ground) lights it, with a sun on the camera's side.

Defect `porosity`: a cluster of round gas pores in the bead surface, each a small dark crater decal following the
bead's surface just above it; all pores of the cluster form one mesh, rebuilt per image.
Defect `crack`: a thin jagged dark ribbon on the bead, mostly along the weld (a centreline or toe crack) and
sometimes across it into the heat-affected zone (a transverse crack). Both are sized relative to the bead and placed
on the side of the ring that faces the camera. The defect meshes carry the defect category, so the mask is what the
renderer's segmentation sees of them.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import bpy
import numpy as np

from miad.render.factors import Viewpoint, ViewpointRange
from miad.render.scenarios.common import (
    DEFECT_CATEGORY,
    NamedMaterialScene,
    Sun,
    box,
    material,
    mesh,
    replace_mesh,
    revolve,
    show,
)

# --- dimensions (metres), after a DN250 (10") standard-weight line pipe --------------------------------------------
PIPE_RADIUS = 0.1365  # 273 mm outside diameter
PIPE_WALL = 0.0093
PIPE_HALF_LENGTH = 1.6  # each section runs 1.6 m from the weld, well out of frame
BEAD_HALF_WIDTH = 0.013  # 26 mm wide cap
BEAD_CROWN = 0.003  # cap reinforcement height
BEAD_TOE_SINK = 0.0015  # the bead's edges run this far into the pipe wall: no gap at the toes
BEAD_TOE_OVERRUN = 0.12  # ... over this share of the half width beyond the toe
BEAD_PROFILE_EXPONENT = 0.6  # < 1: a full, rounded cap rather than a parabola
BEAD_SEGMENTS = 800  # around the ring: 5 per ripple
BEAD_PROFILE_POINTS = 19  # across the bead
N_RIPPLES = 160  # ripple pitch = circumference / N_RIPPLES (about 5 mm)
RIPPLE_HEIGHT = 0.00035
RIPPLE_CHEVRON = 0.8  # ripple phase lag at the toes, in pitches: the arcs of the solidifying weld pool
# Gentle hand-made irregularity: (amplitude, harmonic, phase) terms around the ring
BEAD_WIDTH_WOBBLE = ((0.06, 3, 0.4), (0.04, 7, 1.3), (0.025, 13, 2.1))  # relative to the half width
BEAD_CENTRE_WOBBLE = ((0.0012, 2, 0.7), (0.0006, 5, 2.9))  # metres along the pipe axis
HEAT_TINT_REACH = 0.08  # metres from the weld centre over which the heat tint and brushed band fade out
# fmt: off
HEAT_TINT_STOPS = (  # (distance from the weld centre / HEAT_TINT_REACH, linear RGB)
    (0.00, (0.16, 0.15, 0.17)), (0.17, (0.20, 0.19, 0.24)), (0.24, (0.30, 0.22, 0.14)), (0.34, (0.50, 0.40, 0.22)),
    (0.45, (0.52, 0.50, 0.44)), (0.70, (0.55, 0.55, 0.55)), (0.85, (0.22, 0.22, 0.24)),
)
# fmt: on

# --- pipe rack (background, category 0) --------------------------------------------------------------------------
SADDLE_X = (-0.95, 0.95)  # one saddle under each pipe section
SADDLE_WIDTH = 0.16  # along the pipe
SADDLE_ARC_DEG = (-150.0, -30.0)  # the cradle under the pipe, angle around the axis (0 = +y, 90 = up)
SADDLE_THICKNESS = 0.01
BEAM_TOP_Z = -PIPE_RADIUS - 0.07
BEAM_DEPTH = 0.20
BEAM_FLANGE = 0.10
BEAM_WEB = 0.008
BEAM_FLANGE_THICKNESS = 0.012
BEAM_Y = (-0.95, 0.75)
POST_Y = (-0.85, 0.65)
POST_HEIGHT = 1.8
POST_SIZE = 0.16
BACK_PIPE_RADIUS = 0.057  # a DN100 line on the same rack, behind the welded one
BACK_PIPE_Y = -0.55

# --- materials: (base colour RGB, metallic, roughness, transmission) -------------------------------------------
MATERIALS = {
    "pipe": ((0.22, 0.22, 0.24), 0.75, 0.5, 0.0),  # mill scale; base colour replaced by the heat-tint ramp
    "pipe_bore": ((0.12, 0.10, 0.09), 0.3, 0.8, 0.0),  # inside of the pipe, corroded
    "weld": ((0.24, 0.21, 0.19), 0.85, 0.42, 0.0),  # cap pass: darker, heat-tinted weld metal
    "pore": ((0.015, 0.013, 0.012), 0.0, 0.9, 0.0),  # open gas pores: dark holes
    "crack": ((0.012, 0.011, 0.010), 0.0, 0.9, 0.0),  # an open crack: a dark line
    "rack": ((0.45, 0.46, 0.47), 0.8, 0.55, 0.0),  # galvanised steelwork
    "back_pipe": ((0.30, 0.32, 0.30), 0.0, 0.6, 0.0),  # painted line further back
}
DEFECT_TYPES = ("porosity", "crack")
DEFECT_MATERIAL = {"porosity": "pore", "crack": "crack"}
DEFECT_SPECULAR = 0.05  # Principled "Specular IOR Level" of the pore and crack materials (0.5 = plain dielectric)

# --- defects, relative to the bead (half width `BEAD_HALF_WIDTH`, ring circumference) -------------------------------
DEFECT_FACING_DEG = 35.0  # defect angle around the pipe within this of the camera's, so defective views show it
DEFECT_LIFT = 0.0005  # decals float this far above the bead surface
# porosity
PORE_COUNT = (6, 11)  # pores per cluster, upper bound exclusive
PORE_DIAMETER = (0.28, 0.50)  # of the bead width
PORE_CLUSTER_ALONG = 2.6  # cluster extent along the weld, in bead half widths (each way)
PORE_CLUSTER_ACROSS = 0.55  # pore centres within this share of the half width of the bead centre line
PORE_GAP = 0.15  # minimum gap between pores, in pore radii
PORE_RIM_LIFT = 1.8  # the crater's rim stands this many DEFECT_LIFTs high, its floor one
PORE_RINGS = 4
PORE_SIDES = 16
PORE_TRIES = 60  # draws per pore position before giving up on the gap
# crack
CRACK_ALONG_PROBABILITY = 0.75  # otherwise transverse
CRACK_LENGTH_ALONG = (0.08, 0.16)  # of the ring's circumference
CRACK_LENGTH_ACROSS = (2.0, 2.8)  # of the bead width: across the cap and into the heat-affected zone
CRACK_WIDTH = (0.13, 0.22)  # of the bead width
CRACK_KINKS = 20  # corners of the jagged path
CRACK_JAG = 0.5  # sideways step per kink, in crack widths
CRACK_STEP = 0.0008  # metres between ribbon vertices: finer than the ripples, so the ribbon never dips under them
CRACK_WANDER = 0.45  # along-weld cracks stay within this share of the half width of the centre line
CRACK_TAPER_EXPONENT = 0.4  # width profile sin(pi t) ** this: blunt middle, sharp tips

# --- viewpoint and day light ------------------------------------------------------------------------------------
LOOK_AT = (0.0, 0.0, 0.0)  # the weld, on the pipe axis
VIEWPOINT_RANGE = ViewpointRange(
    r_min=0.65,
    r_max=1.15,
    theta_min=35.0,
    theta_max=145.0,  # the +y side of the pipe, up to 55 degrees off square to the weld
    phi_min=-10.0,
    phi_max=40.0,
    look_at=LOOK_AT,
    fixed_theta=75.5,
    fixed_phi=15.5,
)
CAMERA_FOV_DEG = 40.0


def _harmonics(psi: np.ndarray, terms: tuple[tuple[float, int, float], ...]) -> np.ndarray:
    """Sum of a * sin(k psi + phase) over `terms`: a smooth, fixed irregularity around the ring."""
    return sum(a * np.sin(k * psi + phase) for a, k, phase in terms)


def _bead_frame(psi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre line (axial position) and half width of the bead at angles `psi` around the pipe."""
    centre = _harmonics(psi, BEAD_CENTRE_WOBBLE)
    half = BEAD_HALF_WIDTH * (1.0 + _harmonics(psi, BEAD_WIDTH_WOBBLE))
    return centre, half


def _surface_height(axial: np.ndarray, psi: np.ndarray, sink: bool = False) -> np.ndarray:
    """Height of the weld surface above the pipe's outside at (axial position, angle): bead, ripples, pipe.

    With `sink` the bead's edge runs into the pipe wall beyond the toes (the bead mesh); without, the surface there
    is the pipe's (where decals lie).
    """
    centre, half = _bead_frame(psi)
    u = (axial - centre) / half  # -1 .. 1 across the cap
    inside = np.clip(1.0 - u**2, 0.0, 1.0)
    arc = psi * PIPE_RADIUS
    pitch = 2 * math.pi * PIPE_RADIUS / N_RIPPLES
    ripple = RIPPLE_HEIGHT * inside * np.sin(2 * math.pi * (arc / pitch - RIPPLE_CHEVRON * u**2))
    height = BEAD_CROWN * inside**BEAD_PROFILE_EXPONENT + ripple
    if sink:
        return np.where(np.abs(u) < 1.0, height, -BEAD_TOE_SINK * np.minimum((np.abs(u) - 1.0) / BEAD_TOE_OVERRUN, 1.0))
    return np.maximum(height, 0.0)


def _on_pipe(axial: np.ndarray, psi: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """World points (N, 3) at axial position, angle around the axis (0 = +y, 90 deg = up) and radius."""
    return np.stack([axial, radius * np.cos(psi), radius * np.sin(psi)], axis=-1)


def _decal_points(axial: np.ndarray, arc: np.ndarray, lift: np.ndarray | float) -> list[tuple[float, float, float]]:
    """Points on the weld surface, `lift` above it, from (axial, arc length along the ring) coordinates."""
    psi = np.asarray(arc) / PIPE_RADIUS
    radius = PIPE_RADIUS + _surface_height(np.asarray(axial), psi) + lift
    return [tuple(p) for p in _on_pipe(np.asarray(axial), psi, radius).tolist()]


def _bead_mesh() -> bpy.types.Mesh:
    """The cap pass: a ring grid over (angle, across), the height from `_surface_height` (ripples included)."""
    psi = np.linspace(0.0, 2 * math.pi, BEAD_SEGMENTS, endpoint=False)  # (S,)
    u = np.linspace(-1.0 - BEAD_TOE_OVERRUN, 1.0 + BEAD_TOE_OVERRUN, BEAD_PROFILE_POINTS)  # (P,)
    centre, half = _bead_frame(psi)
    axial = centre[:, None] + u[None, :] * half[:, None]  # (S, P)
    grid_psi = np.broadcast_to(psi[:, None], axial.shape)
    radius = PIPE_RADIUS + _surface_height(axial, grid_psi, sink=True)
    verts = _on_pipe(axial, grid_psi, radius).reshape(-1, 3).tolist()
    n = BEAD_PROFILE_POINTS
    faces = [
        (s * n + p, s * n + p + 1, ((s + 1) % BEAD_SEGMENTS) * n + p + 1, ((s + 1) % BEAD_SEGMENTS) * n + p)
        for s in range(BEAD_SEGMENTS)
        for p in range(n - 1)
    ]
    return mesh("weld_bead", verts, faces, smooth=True)


def _annulus_profile(radius: float, inner: float, z0: float, z1: float) -> tuple[tuple[float, float], ...]:
    """A pipe wall from z0 to z1 as a closed (radius, z) loop for `revolve`."""
    return ((inner, z0), (radius, z0), (radius, z1), (inner, z1))


def _saddle_mesh(x: float) -> bpy.types.Mesh:
    """A curved cradle plate under the pipe at axial position x, with its gusset down to the beam."""
    angles = np.radians(np.linspace(*SADDLE_ARC_DEG, 17))
    r0, r1 = PIPE_RADIUS + 0.0005, PIPE_RADIUS + SADDLE_THICKNESS
    verts, faces = [], []
    w = SADDLE_WIDTH / 2
    for xa, r in ((x - w, r0), (x + w, r0), (x + w, r1), (x - w, r1)):  # section corners, swept along the arc
        verts += _on_pipe(np.full(len(angles), xa), angles, np.full(len(angles), r)).tolist()
    m = len(angles)
    for k in range(4):
        nxt = (k + 1) % 4
        faces += [(k * m + i, k * m + i + 1, nxt * m + i + 1, nxt * m + i) for i in range(m - 1)]
    faces += [tuple(k * m for k in range(4)), tuple(k * m + m - 1 for k in range(4))]
    # Gusset: a plate from the cradle's lowest point down to the beam
    top = -PIPE_RADIUS - SADDLE_THICKNESS / 2
    base = len(verts)
    gusset = box("gusset", (SADDLE_WIDTH * 0.9, 0.012, top - BEAM_TOP_Z), (x, 0.0, (top + BEAM_TOP_Z) / 2))
    verts += [tuple(v.co) for v in gusset.vertices]
    faces += [tuple(base + i for i in p.vertices) for p in gusset.polygons]
    bpy.data.meshes.remove(gusset)
    return mesh(f"saddle_{x:+.2f}", verts, faces, smooth=False)


def _beam_boxes(x: float) -> list[tuple[tuple[float, float, float], tuple[float, float, float]]]:
    """An I-beam crossmember along y under axial position x, and its two posts: (size, centre) boxes."""
    length, mid = BEAM_Y[1] - BEAM_Y[0], (BEAM_Y[0] + BEAM_Y[1]) / 2
    t = BEAM_FLANGE_THICKNESS
    boxes = [
        ((BEAM_FLANGE, length, t), (x, mid, BEAM_TOP_Z - t / 2)),
        ((BEAM_FLANGE, length, t), (x, mid, BEAM_TOP_Z - BEAM_DEPTH + t / 2)),
        ((BEAM_WEB, length, BEAM_DEPTH - 2 * t), (x, mid, BEAM_TOP_Z - BEAM_DEPTH / 2)),
    ]
    post_top = BEAM_TOP_Z - BEAM_DEPTH
    for y in POST_Y:
        boxes.append(((POST_SIZE, POST_SIZE, POST_HEIGHT), (x, y, post_top - POST_HEIGHT / 2)))
    return boxes


def _heat_tint(mat: bpy.types.Material) -> None:
    """Drive the base colour by distance from the weld along the pipe (object z): heat tint, brushed band, scale."""
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")
    coords = nodes.new("ShaderNodeTexCoord")
    split = nodes.new("ShaderNodeSeparateXYZ")
    distance = nodes.new("ShaderNodeMath")
    distance.operation = "ABSOLUTE"
    scale = nodes.new("ShaderNodeMath")
    scale.operation = "DIVIDE"
    scale.inputs[1].default_value = HEAT_TINT_REACH
    ramp = nodes.new("ShaderNodeValToRGB")
    elements = ramp.color_ramp.elements
    while len(elements) < len(HEAT_TINT_STOPS):
        elements.new(0.5)
    for element, (position, colour) in zip(elements, HEAT_TINT_STOPS, strict=True):
        element.position = position
        element.color = (*colour, 1.0)
    links.new(coords.outputs["Object"], split.inputs["Vector"])
    links.new(split.outputs["Z"], distance.inputs[0])
    links.new(distance.outputs["Value"], scale.inputs[0])
    links.new(scale.outputs["Value"], ramp.inputs["Fac"])
    links.new(ramp.outputs["Color"], bsdf.inputs["Base Color"])


class MetalWeldingScene(NamedMaterialScene):
    """Builds the welded pipe on its rack once; per image it places pores or a crack (or not) and the sun."""

    key = "metal_welding"
    defect_types = DEFECT_TYPES
    viewpoint_range = VIEWPOINT_RANGE
    camera_fov_deg = CAMERA_FOV_DEG
    defect_category_id = DEFECT_CATEGORY
    light = "day"
    object_radius = 0.35  # metres: the pipe around the weld that fills the view

    def __init__(self, bproc: ModuleType) -> None:
        self._bproc = bproc
        self._mats = {name: material(bproc, name, spec) for name, spec in MATERIALS.items()}
        _heat_tint(self._mats["pipe"])
        for name in DEFECT_MATERIAL.values():  # holes reflect next to nothing, even at grazing angles
            bsdf = next(n for n in self._mats[name].node_tree.nodes if n.type == "BSDF_PRINCIPLED")
            bsdf.inputs["Specular IOR Level"].default_value = DEFECT_SPECULAR

        # The welded pipe: one straight run along x (revolved about z, turned onto x), its bore, the cap pass
        along_x = (0.0, math.pi / 2, 0.0)  # object z -> world x
        outer = _annulus_profile(PIPE_RADIUS, PIPE_RADIUS - 0.002, -PIPE_HALF_LENGTH, PIPE_HALF_LENGTH)
        bore = _annulus_profile(PIPE_RADIUS - 0.002, PIPE_RADIUS - PIPE_WALL, -PIPE_HALF_LENGTH, PIPE_HALF_LENGTH)
        self._add("pipe", revolve("pipe", outer), "pipe").rotation_euler = along_x
        self._add("pipe_bore", revolve("pipe_bore", bore), "pipe_bore").rotation_euler = along_x
        self._add("weld_bead", _bead_mesh(), "weld")

        # The rack (not the object of interest): saddles, I-beam crossmembers on posts, a smaller line behind
        for i, x in enumerate(SADDLE_X):
            self._add(f"saddle_{i}", _saddle_mesh(x), "rack", category=0)
            for j, (size, centre) in enumerate(_beam_boxes(x)):
                self._add(f"rack_{i}_{j}", box(f"rack_{i}_{j}", size, centre), "rack", category=0)
        back = _annulus_profile(BACK_PIPE_RADIUS, BACK_PIPE_RADIUS - 0.006, -PIPE_HALF_LENGTH, PIPE_HALF_LENGTH)
        back_pipe = self._add("back_pipe", revolve("back_pipe", back), "back_pipe", category=0)
        back_pipe.rotation_euler = along_x
        back_pipe.location = (0.0, BACK_PIPE_Y, BEAM_TOP_Z + BACK_PIPE_RADIUS)

        # Defects: one object each, its mesh rebuilt per image
        self._defects = {
            kind: self._add(kind, bpy.data.meshes.new(kind), DEFECT_MATERIAL[kind], category=DEFECT_CATEGORY)
            for kind in DEFECT_TYPES
        }
        self._active: str | None = None
        self.clear_defect()

        self._sun = Sun(bproc)

    def defect_objects(self) -> list[bpy.types.Object]:
        """Objects whose visible pixels are the defect mask (none while the weld is sound)."""
        return [self._defects[self._active]] if self._active else []

    def clear_defect(self) -> None:
        """A sound weld."""
        for obj in self._defects.values():
            show(obj, False)
        self._active = None

    def place_defect(self, rng: np.random.Generator, defect_type: str, viewpoint: Viewpoint) -> dict[str, Any]:
        """Put pores or a crack on the bead, on the side of the ring that faces the camera; return what was done."""
        if defect_type not in DEFECT_TYPES:
            raise ValueError(f"{self.key} has no defect type {defect_type!r}; known: {list(DEFECT_TYPES)}")
        camera = np.asarray(viewpoint.location)
        facing = math.atan2(camera[2], camera[1])  # camera's angle around the pipe axis
        psi = facing + math.radians(float(rng.uniform(-DEFECT_FACING_DEG, DEFECT_FACING_DEG)))
        if defect_type == "porosity":
            data, record = self._pores(rng, psi)
        else:
            data, record = self._crack(rng, psi)
        self.clear_defect()
        obj = self._defects[defect_type]
        replace_mesh(obj, data, self._mats[DEFECT_MATERIAL[defect_type]])
        show(obj, True)
        self._active = defect_type
        bpy.context.view_layer.update()
        return {"type": defect_type, "angle_deg": math.degrees(psi) % 360.0, **record}

    def _pores(self, rng: np.random.Generator, psi: float) -> tuple[bpy.types.Mesh, dict[str, Any]]:
        """A cluster of crater decals around angle `psi` on the bead."""
        count = int(rng.integers(*PORE_COUNT))
        centre, half = (float(v) for v in _bead_frame(np.array(psi)))
        arc0 = psi * PIPE_RADIUS
        pores: list[tuple[float, float, float]] = []  # (axial, arc, radius)
        for _ in range(count):
            radius = float(rng.uniform(*PORE_DIAMETER)) * BEAD_HALF_WIDTH  # diameter share of the width = 2 half
            for _ in range(PORE_TRIES):
                axial = centre + float(rng.uniform(-PORE_CLUSTER_ACROSS, PORE_CLUSTER_ACROSS)) * half
                arc = arc0 + float(rng.uniform(-PORE_CLUSTER_ALONG, PORE_CLUSTER_ALONG)) * half
                if all(math.hypot(axial - a, arc - s) > (radius + r) * (1 + PORE_GAP) for a, s, r in pores):
                    pores.append((axial, arc, radius))
                    break
        verts: list[tuple[float, float, float]] = []
        faces: list[tuple[int, ...]] = []
        rings = np.linspace(0.0, 1.0, PORE_RINGS + 1)[1:]  # ring radii as shares of the pore radius
        angles = np.linspace(0.0, 2 * math.pi, PORE_SIDES, endpoint=False)
        lift = DEFECT_LIFT * (1.0 + (PORE_RIM_LIFT - 1.0) * rings**2)  # crater: floor low, rim high
        for axial, arc, radius in pores:
            base = len(verts)
            verts += _decal_points(np.array([axial]), np.array([arc]), DEFECT_LIFT)
            a = axial + radius * np.outer(rings, np.cos(angles))  # (rings, sides)
            s = arc + radius * np.outer(rings, np.sin(angles))
            verts += _decal_points(a.ravel(), s.ravel(), np.repeat(lift, PORE_SIDES))
            faces += [(base, base + 1 + (i + 1) % PORE_SIDES, base + 1 + i) for i in range(PORE_SIDES)]
            for k in range(PORE_RINGS - 1):
                r0, r1 = base + 1 + k * PORE_SIDES, base + 1 + (k + 1) * PORE_SIDES
                faces += [
                    (r0 + i, r0 + (i + 1) % PORE_SIDES, r1 + (i + 1) % PORE_SIDES, r1 + i) for i in range(PORE_SIDES)
                ]
        data = mesh("porosity", verts, faces, smooth=True)
        diameters = [2 * r / (2 * BEAD_HALF_WIDTH) for _, _, r in pores]
        return data, {"pores": len(pores), "diameter_fraction": [float(d) for d in diameters]}

    def _crack(self, rng: np.random.Generator, psi: float) -> tuple[bpy.types.Mesh, dict[str, Any]]:
        """A jagged ribbon decal along or across the bead at angle `psi`."""
        along = bool(rng.random() < CRACK_ALONG_PROBABILITY)
        width = float(rng.uniform(*CRACK_WIDTH)) * 2 * BEAD_HALF_WIDTH
        if along:
            length = float(rng.uniform(*CRACK_LENGTH_ALONG)) * 2 * math.pi * PIPE_RADIUS
        else:
            length = float(rng.uniform(*CRACK_LENGTH_ACROSS)) * 2 * BEAD_HALF_WIDTH
        kinks = np.linspace(0.0, 1.0, CRACK_KINKS)
        steps = rng.uniform(-CRACK_JAG, CRACK_JAG, CRACK_KINKS) * width
        offset0 = float(rng.uniform(-CRACK_WANDER, CRACK_WANDER)) * BEAD_HALF_WIDTH if along else 0.0
        walk = np.cumsum(steps) - kinks * steps.sum()  # a random walk pinned at both ends
        limit = CRACK_WANDER * BEAD_HALF_WIDTH if along else length / 4
        walk = np.clip(offset0 + walk, -limit, limit)
        # Straight runs between the kinks, sampled finely enough to follow the ripples
        n = max(CRACK_KINKS, math.ceil(length / CRACK_STEP) + 1)
        t = np.linspace(0.0, 1.0, n)
        sideways = np.interp(t, kinks, walk)
        centre, _ = (float(v) for v in _bead_frame(np.array(psi)))
        arc0 = psi * PIPE_RADIUS
        lengthwise = (t - 0.5) * length
        # Path in (axial, arc) coordinates; along the weld the path runs around the ring, across it along the axis
        if along:
            path = np.stack([centre + sideways, arc0 + lengthwise], axis=-1)
        else:
            path = np.stack([centre + lengthwise, arc0 + sideways], axis=-1)
        tangent = np.gradient(path, axis=0)
        tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
        normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=-1)
        half_width = 0.5 * width * np.maximum(np.sin(math.pi * t), 0.05) ** CRACK_TAPER_EXPONENT
        verts: list[tuple[float, float, float]] = []
        for side in (-1.0, 0.0, 1.0):
            p = path + side * half_width[:, None] * normal
            verts += _decal_points(p[:, 0], p[:, 1], DEFECT_LIFT)
        faces = [
            (k * n + i, k * n + i + 1, (k + 1) * n + i + 1, (k + 1) * n + i) for k in range(2) for i in range(n - 1)
        ]
        data = mesh("crack", verts, faces, smooth=False)
        return data, {
            "orientation": "along" if along else "across",
            "length_m": length,
            "width_fraction": width / (2 * BEAD_HALF_WIDTH),
        }

    def place_lights(self, rng: np.random.Generator, viewpoint: Viewpoint) -> dict[str, Any]:
        """A sun on the camera's side of the sky; the world supplies the fill light."""
        return self._sun.place(rng, viewpoint)

    def surface_materials(self) -> list[bpy.types.Material]:
        """Materials that weather (US): the pipe, its bore and the weld metal; not the defects, not the rack."""
        return [self._mats[name] for name in ("pipe", "pipe_bore", "weld")]
