"""Photovoltaic module (paper Table 2: surface anomaly, day): a framed 60-cell module on a ground-mounted rack.

The module (6 x 10 polycrystalline cells of 156 mm, about 1.04 x 1.68 m) sits in portrait, tilted 35 degrees towards the
camera's side of the sky, clamped on two purlins that rest on two rafters, each carried by a short front and a tall rear
post driven into the ground. Laminate: dark-blue cells with a crystal-grain texture, four silver busbars and fine
fingers per cell (procedural stripes in the cell shader, muted so sub-pixel lines do not sparkle), white backsheet
showing in the gaps, and the front glass as a glossy coat over cells and backsheet (a separate glass sheet would hide
the defects from the segmentation pass). An anodised aluminium frame surrounds the laminate. A second module of the same
row stands next to it on its own rack half: context only, segmentation category 0, as is the dry-grass ground plane.
Day: a sun on the camera's side; the world is the renderer's.

Defects, each a thin decal mesh 0.5 mm above one cell (under the glass coat, casting no shadow), with its own object
and the defect category, sized relative to the cell:
- `cell_crack`: a dark zigzag crack from one cell edge to another with two or three tapering side branches.
- `snail_trail`: a brownish-silver discoloured meandering line (oxidised paste along a micro-crack) across the cell
  with one or two branches, lighter than the cell.
- `hot_spot`: a burnt brown blotch, a rough disc covering 12-25 % of the cell, charred in the middle.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import bpy
import numpy as np

from miad.render.factors import Viewpoint, ViewpointRange
from miad.render.pose import set_matrix
from miad.render.scenarios.common import (
    DEFECT_CATEGORY,
    OBJECT_CATEGORY,
    Sun,
    add_object,
    box,
    material,
    mesh,
    show,
)

# --- dimensions (metres), after a 60-cell module with 156 mm (M2) cells ------------------------------------------
CELL = 0.156  # cell side
CELL_GAP = 0.003  # white backsheet between cells
PITCH = CELL + CELL_GAP
N_ROWS, N_COLS = 10, 6  # rows along the slope (module x), columns across it (module y)
GRID_X = N_ROWS * PITCH - CELL_GAP  # cell area, down the slope
GRID_Y = N_COLS * PITCH - CELL_GAP  # cell area, across
LAMINATE_BORDER = 0.025  # backsheet around the cell area
LAMINATE_X = GRID_X + 2 * LAMINATE_BORDER
LAMINATE_Y = GRID_Y + 2 * LAMINATE_BORDER
LAMINATE_THICKNESS = 0.004
FRAME_WIDTH = 0.032  # visible frame profile width
FRAME_OVERLAP = 0.012  # how far the frame's lip covers the laminate edge
FRAME_HEIGHT = 0.035
FRAME_PROUD = 0.003  # lip above the glass
MODULE_X = LAMINATE_X + 2 * (FRAME_WIDTH - FRAME_OVERLAP)  # outer frame size, about 1.68 m
MODULE_Y = LAMINATE_Y + 2 * (FRAME_WIDTH - FRAME_OVERLAP)  # about 1.04 m
BUSBARS = 4  # per cell, running down the slope
BUSBAR_WIDTH = 0.0015
FINGER_SPACING = 0.002  # fingers run across the slope, between the busbars
FINGER_WIDTH = 0.0001

TILT_DEG = 35.0  # module plane against the horizontal; its normal faces azimuth 0 (+x)
CENTRE = (0.0, 0.0, 0.95)  # module centre (world): lower edge about 0.5 m above the ground
NEIGHBOUR_GAP = 0.02  # between the two modules of the row
NEIGHBOUR_Y = -(MODULE_Y + NEIGHBOUR_GAP)  # the neighbour stands on the -y side

# Rack, in module coordinates (x down the slope, y across, z along the normal; origin at the module centre)
PURLIN_X = (-0.45, 0.45)  # two purlins across the slope under the module, clamped to the frame
PURLIN_SIZE = (0.041, MODULE_Y + NEIGHBOUR_GAP / 2, 0.041)
RAFTER_Y = (-0.30, 0.30)  # two rafters along the slope under the purlins
RAFTER_SIZE = (1.30, 0.05, 0.06)
POST_SIZE = (0.06, 0.06)  # posts: square hollow sections
POST_X = (-0.55, 0.55)  # where the rear and front posts meet the rafter
Z_PURLIN = -FRAME_HEIGHT - PURLIN_SIZE[2] / 2
Z_RAFTER = Z_PURLIN - PURLIN_SIZE[2] / 2 - RAFTER_SIZE[2] / 2
GROUND_SIZE = 60.0

# --- materials: (base colour RGB, metallic, roughness, transmission) -------------------------------------------
MATERIALS = {
    "cell": ((0.020, 0.040, 0.110), 0.0, 0.55, 0.0),  # base of the crystal-grain ramp, see CELL_GRAIN
    "backsheet": ((0.78, 0.79, 0.80), 0.0, 0.5, 0.0),
    "frame": ((0.78, 0.79, 0.81), 1.0, 0.30, 0.0),  # anodised aluminium
    "rack": ((0.56, 0.57, 0.58), 0.85, 0.50, 0.0),  # hot-dip galvanised steel
    "ground": ((0.16, 0.15, 0.07), 0.0, 0.95, 0.0),  # dry grass, see GROUND_RAMP
    "crack": ((0.004, 0.004, 0.005), 0.0, 0.60, 0.0),  # fractured silicon: darker than the cell
    "snail_trail": ((0.15, 0.12, 0.085), 0.3, 0.45, 0.0),  # silvery-brown discoloured paste: lighter than the cell
    "hot_spot": ((0.34, 0.18, 0.07), 0.0, 0.70, 0.0),  # rim of the burn, see HOT_SPOT_RAMP
}
CELL_GRAIN = ((0.010, 0.022, 0.070), (0.030, 0.060, 0.160))  # crystal grains: dark and light blue
CELL_GRAIN_SCALE = 90.0  # Voronoi cells per metre: grains of about 1 cm
METAL_COLOUR = (0.30, 0.31, 0.33)  # busbars and fingers: diffuse and muted, so sub-pixel lines do not sparkle
FINGER_SHARE = 0.3  # fingers tint the cell less than the busbars
GROUND_RAMP = ((0.10, 0.11, 0.04), (0.30, 0.26, 0.12))
GROUND_NOISE_SCALE = 1.5
HOT_SPOT_RAMP = ((0.035, 0.020, 0.012), (0.34, 0.18, 0.07))  # charred centre, brown rim
COAT = {"Coat Weight": 1.0, "Coat Roughness": 0.03, "Coat IOR": 1.5}  # the front glass
CELL_SPECULAR = {"Specular IOR Level": 0.2}  # AR-coated silicon: the glass coat does the reflecting
OWN_MATERIALS = ("crack", "snail_trail", "hot_spot", "ground")  # not weathered with the module
DEFECT_TYPES = ("cell_crack", "snail_trail", "hot_spot")

# --- defects, relative to the cell --------------------------------------------------------------------------
DECAL_OFFSET = 0.0005  # above the cell surface
NEAR_CELLS = 24  # the defect goes on one of the cells nearest the camera (the 40 % of the module facing it)
CELL_MARGIN = 0.03  # decal points stay this far (fraction of the cell) inside the cell
CRACK_WIDTH = (0.10, 0.12)  # fraction of the cell; a crack must stay about a pixel wide at 128 px
CRACK_POINTS = 8  # along the main crack
CRACK_ADJACENT_SHARE = 0.25  # cracks that cut a corner off rather than run edge to edge
CRACK_ZIGZAG = 0.07  # sideways jitter per point, fraction of the cell
CRACK_BRANCHES = (2, 3)  # how many side branches
BRANCH_LENGTH = (0.30, 0.50)  # fraction of the cell
BRANCH_ANGLE_DEG = (30.0, 70.0)  # off the main crack
BRANCH_POINTS = 4
TIP_WIDTH = 0.45  # tapering towards the free tips, relative to the line's width
TRAIL_WIDTH = (0.10, 0.12)  # fraction of the cell
TRAIL_POINTS = 14
TRAIL_WAVES = (1.0, 2.0)  # meander periods across the cell
TRAIL_AMPLITUDE = (0.06, 0.12)  # fraction of the cell
TRAIL_BRANCHES = (1, 2)
HOT_SPOT_AREA = (0.12, 0.25)  # share of the cell's area
HOT_SPOT_POINTS = 20  # outline points
HOT_SPOT_ROUGHNESS = 0.22  # relative radial jitter of the outline
HOT_SPOT_CENTRE = 0.25  # the centre lies within this fraction of the cell from the cell's middle

# --- viewpoint: the whole module in view, from its front side ---------------------------------------------------
# The whole module keeps its coverage in 30-55 % and its cells at about 10 px (128 px images), so a defect sized to a
# cell is ~0.1 % of the image, as in the paper; framing a few cells would fill the frame and blow the defects up.
LOOK_AT_DOWN_SLOPE = 0.10  # look a little below the module centre: the near (lower) edge is the larger in view
LOOK_AT = (
    CENTRE[0] + LOOK_AT_DOWN_SLOPE * math.cos(math.radians(TILT_DEG)),
    CENTRE[1],
    CENTRE[2] - LOOK_AT_DOWN_SLOPE * math.sin(math.radians(TILT_DEG)),
)
VIEWPOINT_RANGE = ViewpointRange(
    r_min=2.4,
    r_max=3.1,
    theta_min=-55.0,
    theta_max=55.0,
    phi_min=20.0,
    phi_max=60.0,
    look_at=LOOK_AT,
    fixed_theta=10.5,
    fixed_phi=40.5,
)
CAMERA_FOV_DEG = 42.0


class PhotovoltaicModuleScene:
    """Builds the module, its rack and the neighbour once; per image it swaps one decal mesh and places the sun."""

    key = "photovoltaic_module"
    defect_types = DEFECT_TYPES
    viewpoint_range = VIEWPOINT_RANGE
    camera_fov_deg = CAMERA_FOV_DEG
    defect_category_id = DEFECT_CATEGORY
    light = "day"
    object_radius = 0.95  # metres: half the module's diagonal, around its centre

    def __init__(self, bproc: ModuleType) -> None:
        self._mats = {name: material(bproc, name, spec) for name, spec in MATERIALS.items()}
        _cell_shader(self._mats["cell"])
        _ramp_shader(self._mats["ground"], _noise_factor, GROUND_RAMP)
        _ramp_shader(self._mats["hot_spot"], _radial_factor, HOT_SPOT_RAMP)
        for name in ("cell", "backsheet", "crack", "snail_trail", "hot_spot"):
            _principled_inputs(self._mats[name], COAT)
        _principled_inputs(self._mats["cell"], CELL_SPECULAR)

        # The module of interest with its rack half, and its neighbour in the row (context, category 0)
        tilt = math.radians(TILT_DEG)
        self._matrix = _module_matrix(CENTRE, tilt)
        self._build_module("module", self._matrix, OBJECT_CATEGORY)
        neighbour = (CENTRE[0], CENTRE[1] + NEIGHBOUR_Y, CENTRE[2])
        self._build_module("neighbour", _module_matrix(neighbour, tilt), 0)
        ground = add_object("ground", box("ground", (GROUND_SIZE, GROUND_SIZE, 0.02), (0, 0, -0.01)), None, category=0)
        ground.data.materials.append(self._mats["ground"])

        # One decal object per defect type, filled per image
        self._decals = {}
        for kind, mat in zip(DEFECT_TYPES, ("crack", "snail_trail", "hot_spot"), strict=True):
            decal = add_object(f"decal_{kind}", bpy.data.meshes.new(kind), self._mats[mat], category=DEFECT_CATEGORY)
            set_matrix(decal, self._matrix)
            decal.visible_shadow = False
            show(decal, False)
            self._decals[kind] = decal
        self._active: str | None = None

        self._sun = Sun(bproc)

    def _build_module(self, name: str, matrix: np.ndarray, category: int) -> None:
        """Laminate (cells, backsheet), frame and rack half of one module, placed by `matrix`."""
        parts = [
            ("cells", _cells_mesh(f"{name}_cells"), "cell"),
            ("backsheet", box(f"{name}_backsheet", (LAMINATE_X, LAMINATE_Y, LAMINATE_THICKNESS),
                              (0, 0, -LAMINATE_THICKNESS / 2 - 0.0002)), "backsheet"),
        ]  # fmt: skip
        frame_z = FRAME_PROUD - FRAME_HEIGHT / 2
        edge_x, edge_y = (MODULE_X - FRAME_WIDTH) / 2, (MODULE_Y - FRAME_WIDTH) / 2
        for sign in (-1, 1):
            size_x, size_y = (
                (FRAME_WIDTH, MODULE_Y, FRAME_HEIGHT),
                (MODULE_X - 2 * FRAME_WIDTH, FRAME_WIDTH, FRAME_HEIGHT),
            )
            parts.append((f"frame_x{sign:+d}", box(f"{name}_frame", size_x, (sign * edge_x, 0, frame_z)), "frame"))
            parts.append((f"frame_y{sign:+d}", box(f"{name}_frame", size_y, (0, sign * edge_y, frame_z)), "frame"))
        for i, x in enumerate(PURLIN_X):
            parts.append((f"purlin_{i}", box(f"{name}_purlin", PURLIN_SIZE, (x, 0, Z_PURLIN)), "rack"))
        for i, y in enumerate(RAFTER_Y):
            parts.append((f"rafter_{i}", box(f"{name}_rafter", RAFTER_SIZE, (0, y, Z_RAFTER)), "rack"))
        for part, data, mat in parts:
            obj = add_object(f"{name}_{part}", data, self._mats[mat], category=category)
            set_matrix(obj, matrix)

        # Posts: vertical, from the ground up to the rafters' underside
        for i, y in enumerate(RAFTER_Y):
            for j, x in enumerate(POST_X):
                top = np.asarray(matrix) @ np.array([x, y, Z_RAFTER - RAFTER_SIZE[2] / 2, 1.0])
                height = float(top[2])
                data = box(f"{name}_post", (*POST_SIZE, height), (0, 0, height / 2))
                add_object(f"{name}_post_{i}{j}", data, self._mats["rack"], (top[0], top[1], 0.0), category)

    def defect_objects(self) -> list[bpy.types.Object]:
        """Objects whose visible pixels are the defect mask."""
        return [self._decals[self._active]] if self._active else []

    def clear_defect(self) -> None:
        """All cells intact."""
        for decal in self._decals.values():
            show(decal, False)
        self._active = None

    def place_defect(self, rng: np.random.Generator, defect_type: str, viewpoint: Viewpoint) -> dict[str, Any]:
        """Draw a defect of `defect_type` on one cell of the module; return what was done."""
        if defect_type not in DEFECT_TYPES:
            raise ValueError(f"{self.key} has no defect type {defect_type!r}; known: {list(DEFECT_TYPES)}")
        row, col = self._near_cell(rng, viewpoint)
        centre = np.array([(row - (N_ROWS - 1) / 2) * PITCH, (col - (N_COLS - 1) / 2) * PITCH])
        builders = {"cell_crack": _crack_pieces, "snail_trail": _trail_pieces, "hot_spot": _hot_spot_pieces}
        pieces, params = builders[defect_type](rng)
        verts, faces = [], []
        for k, (points, tris) in enumerate(pieces):  # points in cell units, centred on the cell
            start = len(verts)
            z = DECAL_OFFSET + 0.0001 * k  # later pieces a hair higher: no coplanar overlaps
            verts += [(centre[0] + CELL * p[0], centre[1] + CELL * p[1], z) for p in points]
            faces += [tuple(start + i for i in tri) for tri in tris]
        self.clear_defect()
        decal = self._decals[defect_type]
        old = decal.data
        decal.data = mesh(defect_type, verts, faces, smooth=False)
        decal.data.materials.append(old.materials[0])
        bpy.data.meshes.remove(old)
        show(decal, True)
        self._active = defect_type
        bpy.context.view_layer.update()
        return {"type": defect_type, "cell_row": row, "cell_col": col, **params}

    def _near_cell(self, rng: np.random.Generator, viewpoint: Viewpoint) -> tuple[int, int]:
        """(row, column) of a random cell among the NEAR_CELLS nearest the camera."""
        rows, cols = np.meshgrid(np.arange(N_ROWS), np.arange(N_COLS), indexing="ij")
        local = np.stack([(rows.ravel() - (N_ROWS - 1) / 2) * PITCH, (cols.ravel() - (N_COLS - 1) / 2) * PITCH,
                          np.zeros(rows.size), np.ones(rows.size)])  # fmt: skip
        world = (np.asarray(self._matrix) @ local)[:3].T  # (cells, 3)
        order = np.argsort(np.linalg.norm(world - np.asarray(viewpoint.location), axis=1), kind="stable")
        index = int(order[int(rng.integers(NEAR_CELLS))])
        return index // N_COLS, index % N_COLS

    def place_lights(self, rng: np.random.Generator, viewpoint: Viewpoint) -> dict[str, Any]:
        """A sun on the camera's side of the sky."""
        return self._sun.place(rng, viewpoint)

    def surface_materials(self) -> list[bpy.types.Material]:
        """Materials that weather (US): cells, backsheet, frame and rack; not the defects, not the ground."""
        return [mat for name, mat in self._mats.items() if name not in OWN_MATERIALS]


# --- geometry -----------------------------------------------------------------------------------------------
def _module_matrix(centre: tuple[float, float, float], tilt: float) -> np.ndarray:
    """(4, 4) world matrix of a module: x down the slope towards +x, y across, z along the normal (elevation
    90 - tilt): a rotation by `tilt` about y, then the translation to `centre`."""
    matrix = np.eye(4)
    matrix[:3, :3] = ((math.cos(tilt), 0.0, math.sin(tilt)), (0.0, 1.0, 0.0), (-math.sin(tilt), 0.0, math.cos(tilt)))
    matrix[:3, 3] = centre
    return matrix


def _cells_mesh(name: str) -> bpy.types.Mesh:
    """One quad per cell at z = 0 (the shader draws busbars and fingers)."""
    verts, faces = [], []
    for row in range(N_ROWS):
        for col in range(N_COLS):
            x0, y0 = -GRID_X / 2 + row * PITCH, -GRID_Y / 2 + col * PITCH
            start = len(verts)
            verts += [(x0, y0, 0.0), (x0 + CELL, y0, 0.0), (x0 + CELL, y0 + CELL, 0.0), (x0, y0 + CELL, 0.0)]
            faces.append((start, start + 1, start + 2, start + 3))
    return mesh(name, verts, faces, smooth=False)


def _ribbon(points: np.ndarray, widths: np.ndarray) -> tuple[list, list]:
    """A flat strip along a 2-D polyline (N, 2) with per-point widths (N,), mitred joints; (points, triangles)."""
    keep = np.concatenate([[True], np.linalg.norm(np.diff(points, axis=0), axis=1) > 1e-4])  # clipping may stack
    points, widths = points[keep], widths[keep]
    tangents = np.diff(points, axis=0)
    tangents /= np.linalg.norm(tangents, axis=1, keepdims=True)
    normals = np.stack([-tangents[:, 1], tangents[:, 0]], axis=1)  # (N-1, 2)
    joint = np.concatenate([normals[:1], normals[:-1] + normals[1:], normals[-1:]])  # (N, 2)
    length = np.linalg.norm(joint, axis=1, keepdims=True)
    joint = np.where(length > 1e-6, joint / np.maximum(length, 1e-6), np.concatenate([normals, normals[-1:]]))
    cos_half = np.concatenate([[1.0], np.einsum("ij,ij->i", joint[1:-1], normals[1:]), [1.0]])
    offset = joint * (widths / 2 / np.maximum(cos_half, 0.5))[:, None]
    left, right = points + offset, points - offset
    verts = [tuple(p) for pair in zip(left, right, strict=True) for p in pair]  # l0 r0 l1 r1 ...
    tris = []
    for i in range(len(points) - 1):
        a, b, c, d = 2 * i, 2 * i + 1, 2 * i + 3, 2 * i + 2
        tris += [(a, b, c), (a, c, d)]
    return verts, tris


def _edge_point(rng: np.random.Generator, side: int) -> np.ndarray:
    """A random point on side `side` (0..3: -x, +x, -y, +y) of the cell, in cell units, inside the margin."""
    half = 0.5 - CELL_MARGIN
    t = float(rng.uniform(-0.7, 0.7)) * half
    return np.array([(-half, t), (half, t), (t, -half), (t, half)][side])


def _clip(points: np.ndarray) -> np.ndarray:
    """Keep points inside the cell, margin included."""
    return np.clip(points, -0.5 + CELL_MARGIN, 0.5 - CELL_MARGIN)


def _crossing(rng: np.random.Generator, adjacent_share: float) -> tuple[np.ndarray, np.ndarray]:
    """Start and end of a line across the cell: on opposite sides, or on two adjacent ones (`adjacent_share`)."""
    side = int(rng.integers(4))
    other = int(rng.choice([2, 3] if side < 2 else [0, 1])) if rng.random() < adjacent_share else side ^ 1
    return _edge_point(rng, side), _edge_point(rng, other)


def _tapered(n: int, tip_at_end: bool, both: bool = False) -> np.ndarray:
    """Width profile (n,): 1 along the line, narrowing to TIP_WIDTH at the free end(s)."""
    t = np.linspace(0.0, 1.0, n)
    profile = 1.0 - (1.0 - TIP_WIDTH) * t**2 if tip_at_end else np.ones(n)
    if both:
        profile = np.minimum(profile, 1.0 - (1.0 - TIP_WIDTH) * (1.0 - t) ** 2)
    return profile


def _branches(rng: np.random.Generator, main: np.ndarray, width: float, count: int) -> list[tuple[list, list]]:
    """Side branches leaving the polyline `main` at random interior points, zigzagging and tapering."""
    pieces = []
    for _ in range(count):
        i = int(rng.integers(1, len(main) - 1))
        along = main[i + 1] - main[i - 1]
        heading = math.atan2(along[1], along[0])
        heading += math.radians(float(rng.uniform(*BRANCH_ANGLE_DEG))) * (1 if rng.random() < 0.5 else -1)
        length = float(rng.uniform(*BRANCH_LENGTH))
        t = np.linspace(0.0, 1.0, BRANCH_POINTS)[:, None]
        points = main[i] + t * length * np.array([math.cos(heading), math.sin(heading)])
        normal = np.array([-math.sin(heading), math.cos(heading)])
        points[1:] += rng.uniform(-CRACK_ZIGZAG, CRACK_ZIGZAG, (BRANCH_POINTS - 1, 1)) * 0.6 * normal
        pieces.append(_ribbon(_clip(points), width * 0.8 * _tapered(BRANCH_POINTS, tip_at_end=True)))
    return pieces


def _crack_pieces(rng: np.random.Generator) -> tuple[list, dict[str, Any]]:
    """A zigzag crack across the cell with side branches, in cell units."""
    start, end = _crossing(rng, CRACK_ADJACENT_SHARE)
    width = float(rng.uniform(*CRACK_WIDTH))
    t = np.linspace(0.0, 1.0, CRACK_POINTS)[:, None]
    direction = end - start
    normal = np.array([-direction[1], direction[0]]) / np.linalg.norm(direction)
    jitter = rng.uniform(-CRACK_ZIGZAG, CRACK_ZIGZAG, (CRACK_POINTS, 1))
    jitter[[0, -1]] = 0.0
    main = _clip(start + t * direction + jitter * normal)
    count = int(rng.integers(CRACK_BRANCHES[0], CRACK_BRANCHES[1] + 1))
    pieces = [_ribbon(main, width * np.ones(CRACK_POINTS)), *_branches(rng, main, width, count)]
    return pieces, {"width_fraction": width, "branches": count}


def _trail_pieces(rng: np.random.Generator) -> tuple[list, dict[str, Any]]:
    """A smooth meandering discoloured line across the cell with one or two branches, in cell units."""
    start, end = _crossing(rng, 0.0)  # a long trail, edge to opposite edge
    width = float(rng.uniform(*TRAIL_WIDTH))
    waves, amplitude = float(rng.uniform(*TRAIL_WAVES)), float(rng.uniform(*TRAIL_AMPLITUDE))
    phase = float(rng.uniform(0.0, 2 * math.pi))
    t = np.linspace(0.0, 1.0, TRAIL_POINTS)
    direction = end - start
    normal = np.array([-direction[1], direction[0]]) / np.linalg.norm(direction)
    sway = amplitude * np.sin(math.pi * t) * np.sin(2 * math.pi * waves * t + phase)  # pinned at both edges
    main = _clip(start + t[:, None] * direction + sway[:, None] * normal)
    count = int(rng.integers(TRAIL_BRANCHES[0], TRAIL_BRANCHES[1] + 1))
    pieces = [_ribbon(main, width * _tapered(TRAIL_POINTS, tip_at_end=False)), *_branches(rng, main, width, count)]
    return pieces, {
        "width_fraction": width,
        "meander_periods": waves,
        "meander_amplitude": amplitude,
        "branches": count,
    }


def _hot_spot_pieces(rng: np.random.Generator) -> tuple[list, dict[str, Any]]:
    """A rough disc of HOT_SPOT_AREA of the cell, in cell units (a triangle fan)."""
    area = float(rng.uniform(*HOT_SPOT_AREA))
    radius = math.sqrt(area / math.pi)
    limit = 0.5 - CELL_MARGIN - radius * (1 + HOT_SPOT_ROUGHNESS)
    centre = rng.uniform(-1.0, 1.0, 2) * min(HOT_SPOT_CENTRE, max(limit, 0.0))
    angles = np.linspace(0.0, 2 * math.pi, HOT_SPOT_POINTS, endpoint=False)
    jitter = rng.uniform(-HOT_SPOT_ROUGHNESS, HOT_SPOT_ROUGHNESS, HOT_SPOT_POINTS)
    jitter = (jitter + np.roll(jitter, 1) + np.roll(jitter, -1)) / 2  # smoothed: lobes, not spikes
    radii = radius * (1 + jitter)
    outline = centre + radii[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    points = [tuple(centre), *map(tuple, _clip(outline))]
    tris = [(0, 1 + i, 1 + (i + 1) % HOT_SPOT_POINTS) for i in range(HOT_SPOT_POINTS)]
    return [(points, tris)], {"area_fraction": area, "centre": [float(c) for c in centre]}


# --- shaders ------------------------------------------------------------------------------------------------
def _principled(mat: bpy.types.Material) -> bpy.types.Node:
    """The material's Principled BSDF node."""
    return next(node for node in mat.node_tree.nodes if node.type == "BSDF_PRINCIPLED")


def _principled_inputs(mat: bpy.types.Material, values: dict[str, float]) -> None:
    """Set Principled BSDF inputs by name."""
    bsdf = _principled(mat)
    for name, value in values.items():
        bsdf.inputs[name].default_value = value


def _math(tree: bpy.types.NodeTree, operation: str, a: Any, b: Any = None) -> bpy.types.NodeSocket:
    """A Math node on sockets or numbers; its output socket."""
    node = tree.nodes.new("ShaderNodeMath")
    node.operation = operation
    for i, value in enumerate((a, b)):
        if value is None:
            continue
        if isinstance(value, (int, float)):
            node.inputs[i].default_value = float(value)
        else:
            tree.links.new(value, node.inputs[i])
    return node.outputs[0]


def _ramp(tree: bpy.types.NodeTree, factor: bpy.types.NodeSocket, colours: tuple) -> bpy.types.NodeSocket:
    """A two-colour ramp driven by `factor`; its colour output."""
    ramp = tree.nodes.new("ShaderNodeValToRGB")
    for element, colour in zip(ramp.color_ramp.elements, colours, strict=True):
        element.color = (*colour, 1.0)
    tree.links.new(factor, ramp.inputs["Fac"])
    return ramp.outputs["Color"]


def _ramp_shader(mat: bpy.types.Material, factor_fn: Any, colours: tuple) -> None:
    """Base colour from a two-colour ramp driven by `factor_fn(tree)`."""
    tree = mat.node_tree
    tree.links.new(_ramp(tree, factor_fn(tree), colours), _principled(mat).inputs["Base Color"])


def _noise_factor(tree: bpy.types.NodeTree) -> bpy.types.NodeSocket:
    """Patchy noise on object coordinates (ground)."""
    coords = tree.nodes.new("ShaderNodeTexCoord")
    noise = tree.nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = GROUND_NOISE_SCALE
    noise.inputs["Detail"].default_value = 6.0
    tree.links.new(coords.outputs["Object"], noise.inputs["Vector"])
    return noise.outputs["Fac"]


def _radial_factor(tree: bpy.types.NodeTree) -> bpy.types.NodeSocket:
    """Distance from the middle of the mesh's bounding box, 0 at the centre to about 1 at the rim (hot spot)."""
    coords = tree.nodes.new("ShaderNodeTexCoord")
    split = tree.nodes.new("ShaderNodeSeparateXYZ")
    tree.links.new(coords.outputs["Generated"], split.inputs[0])
    du = _math(tree, "SUBTRACT", split.outputs[0], 0.5)
    dv = _math(tree, "SUBTRACT", split.outputs[1], 0.5)
    dist = _math(tree, "SQRT", _math(tree, "ADD", _math(tree, "MULTIPLY", du, du), _math(tree, "MULTIPLY", dv, dv)))
    return _math(tree, "MULTIPLY", dist, 2.4)


def _cell_shader(mat: bpy.types.Material) -> None:
    """Crystal-grain blue cells with busbars (down the slope) and fingers (across it), from object coordinates."""
    tree = mat.node_tree
    bsdf = _principled(mat)
    coords = tree.nodes.new("ShaderNodeTexCoord")
    split = tree.nodes.new("ShaderNodeSeparateXYZ")
    tree.links.new(coords.outputs["Object"], split.inputs[0])

    # Grains: Voronoi cells of slightly different blue
    grains = tree.nodes.new("ShaderNodeTexVoronoi")
    grains.inputs["Scale"].default_value = CELL_GRAIN_SCALE
    tree.links.new(coords.outputs["Object"], grains.inputs["Vector"])
    to_bw = tree.nodes.new("ShaderNodeRGBToBW")
    tree.links.new(grains.outputs["Color"], to_bw.inputs[0])
    blue = _ramp(tree, to_bw.outputs[0], CELL_GRAIN)

    # Position inside the cell (0..PITCH) along x and y
    def in_cell(axis: int, grid: float) -> bpy.types.NodeSocket:
        shifted = _math(tree, "ADD", split.outputs[axis], grid / 2)
        return _math(tree, "MULTIPLY", _math(tree, "FRACT", _math(tree, "DIVIDE", shifted, PITCH)), PITCH)

    across, down = in_cell(1, GRID_Y), in_cell(0, GRID_X)
    # Busbars: |fract(across * B / CELL) - 0.5| < half the busbar's share of its strip
    strip = _math(tree, "FRACT", _math(tree, "MULTIPLY", across, BUSBARS / CELL))
    busbar = _math(tree, "LESS_THAN", _math(tree, "ABSOLUTE", _math(tree, "SUBTRACT", strip, 0.5)),
                   BUSBAR_WIDTH * BUSBARS / CELL / 2)  # fmt: skip
    finger = _math(tree, "LESS_THAN", _math(tree, "FRACT", _math(tree, "DIVIDE", down, FINGER_SPACING)),
                   FINGER_WIDTH / FINGER_SPACING)  # fmt: skip
    metal = _math(tree, "MAXIMUM", busbar, _math(tree, "MULTIPLY", finger, FINGER_SHARE))

    mix = tree.nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    sockets = {s.identifier: s for s in mix.inputs}
    tree.links.new(metal, sockets["Factor_Float"])
    tree.links.new(blue, sockets["A_Color"])
    sockets["B_Color"].default_value = (*METAL_COLOUR, 1.0)
    result = next(s for s in mix.outputs if s.identifier == "Result_Color")
    tree.links.new(result, bsdf.inputs["Base Color"])
    tree.links.new(_math(tree, "SUBTRACT", MATERIALS["cell"][2], _math(tree, "MULTIPLY", metal, 0.1)),
                   bsdf.inputs["Roughness"])  # fmt: skip
