"""Wind turbine (paper Table 2: surface anomaly, day): a blade section of a parked three-bladed turbine, by drone.

The turbine is a 2 MW-class upwind machine: a tapered steel tower, a nacelle (a rounded box), a spinner over the hub
and three 40 m blades lofted from NACA 4-digit sections (circular root, thick transition, chord taper, twist), all
in white/light grey paint. The rotor is parked with the inspected blade pointing up, 30 degrees off vertical; the
drone hovers upwind of the blade, about ten metres from its middle, so a blade section crosses the frame against the
sky, as in real blade inspection images. The rotor turns clockwise seen from upwind: the inspected blade's leading
edge faces +y (and up), its pressure side +x (upwind, towards the drone).

Defect `erosion`: leading-edge erosion, where rain and grit have worn the paint off the leading edge and the darker
grey-brown laminate shows. A thin decal conforms to the leading edge a few millimetres off the surface, wraps round
the nose onto the pressure side (facing the drone) and a little onto the suction side, with a ragged, pitted outline;
its spanwise length is a fraction of the blade length and its wrap a fraction of the local chord. The decal has its
own category id, so the mask is what the renderer's segmentation sees of it.
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
    NamedMaterialScene,
    Sun,
    extrude,
    material,
    mesh,
    replace_mesh,
    revolve,
    show,
)

# --- dimensions (metres), after a 2 MW-class turbine with an 84 m rotor --------------------------------------------
HUB_HEIGHT = 80.0
OVERHANG = 4.5  # rotor centre upwind (+x) of the tower axis
BLADE_LENGTH = 40.0
BLADE_ROOT_RADIUS = 1.2  # blade root flange, from the rotor centre (inside the spinner)
NACELLE_LENGTH = 9.0
NACELLE_FRONT_X = 3.8  # just behind the spinner
NACELLE_SIZE = 3.6  # width and height of the rounded box
NACELLE_CORNER = 0.8
CORNER_POINTS = 6  # per rounded corner of the nacelle's section
TOWER_TOP_RADIUS = 1.5
TOWER_BASE_RADIUS = 2.1
INSPECTED_SPAN = 0.5  # look at the middle of the upward blade

# fmt: off
# Spinner profile: closed loop of (radius, axial position), axial along the rotor axis, + upwind
SPINNER_PROFILE = ((0.001, 2.9), (0.35, 2.8), (0.85, 2.45), (1.35, 1.85), (1.75, 1.05), (1.95, 0.25), (2.0, -0.6),
                   (1.9, -0.75), (0.001, -0.75))
TOWER_PROFILE = ((0.001, 0.0), (TOWER_BASE_RADIUS, 0.0), (TOWER_TOP_RADIUS, HUB_HEIGHT - 1.95),
                 (TOWER_TOP_RADIUS + 0.12, HUB_HEIGHT - 1.95), (TOWER_TOP_RADIUS + 0.12, HUB_HEIGHT - 1.8),
                 (0.001, HUB_HEIGHT - 1.8))  # with the yaw-bearing flange on top

# Blade planform along the span fraction u (0 at the root flange, 1 at the tip)
SPAN_U = (0.00, 0.04, 0.18, 0.20, 0.45, 0.75, 0.95, 0.985, 1.00)
CHORD = (1.90, 1.90, 3.10, 3.20, 2.30, 1.35, 0.75, 0.55, 0.20)  # metres
THICKNESS = (0.40, 0.40, 0.32, 0.30, 0.20, 0.16, 0.13, 0.13, 0.13)  # airfoil thickness / chord
ROUNDNESS = (1.00, 1.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00)  # weight of the circular root section
TWIST_DEG = (13.0, 13.0, 13.0, 12.0, 6.0, 2.0, 0.0, 0.0, 0.0)  # leading edge turned upwind
STATIONS = tuple(np.concatenate([np.linspace(0.0, 0.24, 13), np.linspace(0.27, 0.96, 24), (0.975, 0.99, 1.0)]))
# fmt: on
CAMBER = 0.04  # NACA 44xx: 4 % camber at 40 % chord
CAMBER_POS = 0.4
PITCH_AXIS = 0.3  # chord fraction from the leading edge; the round root is centred on its axis
SECTION_HALF_POINTS = 40  # loft points per airfoil side
BLADE_AZIMUTHS_DEG = (30.0, 150.0, 270.0)  # about the rotor axis (+x); 0 would point up. Blade 0 is inspected

# --- materials: (base colour RGB, metallic, roughness, transmission) -------------------------------------------
MATERIALS = {
    "blade_paint": ((0.80, 0.81, 0.80), 0.0, 0.40, 0.0),  # white gelcoat / polyurethane topcoat
    "light_grey": ((0.70, 0.71, 0.71), 0.0, 0.45, 0.0),  # RAL 7035 nacelle, spinner and tower
    "laminate": ((0.26, 0.22, 0.18), 0.0, 0.90, 0.0),  # exposed, weathered glass-fibre epoxy: grey-brown
}
LAMINATE_PITS = ((0.13, 0.11, 0.09), 45.0)  # darker pits mottling the laminate: colour, noise scale (1/m)
DEFECT_TYPES = ("erosion",)

# --- erosion patch, relative to the blade ------------------------------------------------------------------------
EROSION_SPAN_FRACTION = (0.006, 0.010)  # spanwise length / blade length
EROSION_CENTRE_SPREAD = 0.05  # patch centre within this span fraction of the point of interest (in the frame)
EROSION_PRESSURE_WRAP = (0.03, 0.055)  # chord fraction on the pressure side (towards the drone)
EROSION_SUCTION_WRAP = (0.012, 0.025)  # chord fraction on the suction side
EROSION_RAGGEDNESS = 0.35  # relative jitter of the outline, row by row
EROSION_END_WIDTH = 0.2  # wrap at the patch's spanwise ends relative to its middle
EROSION_ROWS = 17
EROSION_COLUMNS = 15
DECAL_OFFSET_FRACTION = 0.003  # of the local chord, off the surface along its normal
NORMAL_STEP = 1e-4  # finite-difference step for the surface normal

# --- viewpoint and day light ------------------------------------------------------------------------------
_LOOK_SPAN = BLADE_ROOT_RADIUS + INSPECTED_SPAN * BLADE_LENGTH  # blade-local z of the point of interest
_LOOK_CHORDWISE = (PITCH_AXIS - 0.5) * float(np.interp(INSPECTED_SPAN, SPAN_U, CHORD))  # mid-chord, blade-local y
_AZ = math.radians(BLADE_AZIMUTHS_DEG[0])
LOOK_AT = (  # the blade-local point turned about the rotor axis (+x) with the inspected blade
    OVERHANG,
    _LOOK_CHORDWISE * math.cos(_AZ) - _LOOK_SPAN * math.sin(_AZ),
    HUB_HEIGHT + _LOOK_CHORDWISE * math.sin(_AZ) + _LOOK_SPAN * math.cos(_AZ),
)
VIEWPOINT_RANGE = ViewpointRange(
    r_min=9.0,
    r_max=14.0,
    theta_min=-25.0,
    theta_max=50.0,
    phi_min=-15.0,
    phi_max=20.0,
    look_at=LOOK_AT,
    fixed_theta=10.5,
    fixed_phi=2.5,
)
CAMERA_FOV_DEG = 40.0


def _planform(u: float) -> tuple[float, float, float, float]:
    """Chord (m), thickness ratio, root roundness and twist (rad) at span fraction `u`."""
    return (
        float(np.interp(u, SPAN_U, CHORD)),
        float(np.interp(u, SPAN_U, THICKNESS)),
        float(np.interp(u, SPAN_U, ROUNDNESS)),
        math.radians(float(np.interp(u, SPAN_U, TWIST_DEG))),
    )


def section_points(u: float, sigma: np.ndarray) -> np.ndarray:
    """Blade-local points (K, 3) of the section at span fraction `u`, at loop parameters `sigma` in [-pi, pi].

    sigma < 0 runs over the suction side, sigma > 0 over the pressure side, 0 is the leading edge and +-pi the
    (closed) trailing edge; chord position x = (1 - cos sigma) / 2 gives cosine spacing. Blade-local axes: span +z,
    leading edge +y, pressure side +x (upwind), twist about the pitch axis.
    """
    chord, tc, roundness, twist = _planform(u)
    beta = np.abs(sigma)
    side = np.where(sigma < 0.0, 1.0, -1.0)  # +1 suction (upper) side, -1 pressure (lower) side
    x = (1.0 - np.cos(beta)) / 2.0
    # NACA 4-digit thickness with a closed trailing edge, and its mean camber line
    yt = 5.0 * tc * (0.2969 * np.sqrt(x) - 0.1260 * x - 0.3516 * x**2 + 0.2843 * x**3 - 0.1036 * x**4)
    m, p = CAMBER, CAMBER_POS
    yc = np.where(x < p, m / p**2 * (2 * p * x - x**2), m / (1 - p) ** 2 * (1 - 2 * p + 2 * p * x - x**2))
    dyc = np.where(x < p, 2 * m / p**2 * (p - x), 2 * m / (1 - p) ** 2 * (p - x))
    slope = np.arctan(dyc)
    xa = x - side * yt * np.sin(slope)
    ya = yc + side * yt * np.cos(slope)
    # Blend towards the circular root (diameter = chord, centred on the pitch axis)
    xs = (1 - roundness) * xa + roundness * x
    ys = (1 - roundness) * ya + roundness * side * 0.5 * np.sin(beta)
    axis = (1 - roundness) * PITCH_AXIS + roundness * 0.5
    towards_le = (axis - xs) * chord
    upwind = -ys * chord  # the suction side faces downwind
    cos_t, sin_t = math.cos(twist), math.sin(twist)
    return np.stack(
        [
            upwind * cos_t + towards_le * sin_t,
            -upwind * sin_t + towards_le * cos_t,
            np.full_like(x, BLADE_ROOT_RADIUS + u * BLADE_LENGTH),
        ],
        axis=-1,
    )


def blade_mesh(name: str) -> bpy.types.Mesh:
    """The lofted blade along blade-local +z, capped at root and tip."""
    sigma = math.pi * np.linspace(-1.0, 1.0, 2 * SECTION_HALF_POINTS + 1)[:-1]  # trailing edge once
    loops = [section_points(u, sigma) for u in STATIONS]
    k, s = len(sigma), len(loops)
    verts = np.concatenate(loops).tolist()
    faces = [
        (i * k + j, i * k + (j + 1) % k, (i + 1) * k + (j + 1) % k, (i + 1) * k + j)
        for i in range(s - 1)
        for j in range(k)
    ]
    faces += [tuple(range(k - 1, -1, -1)), tuple(range((s - 1) * k, s * k))]
    return mesh(name, verts, faces, smooth=True)


def _rotor_matrix(azimuth_deg: float) -> np.ndarray:
    """4x4 world matrix of a blade: blade-local +z rotated about the rotor axis (+x) at the rotor centre."""
    a = math.radians(azimuth_deg)
    matrix = np.eye(4)
    matrix[1:3, 1:3] = ((math.cos(a), -math.sin(a)), (math.sin(a), math.cos(a)))
    matrix[:3, 3] = (OVERHANG, 0.0, HUB_HEIGHT)
    return matrix


def _rounded_square(size: float, corner: float) -> list[tuple[float, float]]:
    """A closed (y, z) polygon: a square of side `size` centred on 0 with rounded corners, counter-clockwise."""
    half, points = size / 2 - corner, []
    for cy, cz, start in ((half, half, 0.0), (-half, half, 90.0), (-half, -half, 180.0), (half, -half, 270.0)):
        for a in np.radians(np.linspace(start, start + 90.0, CORNER_POINTS)):
            points.append((cy + corner * math.cos(a), cz + corner * math.sin(a)))
    return points


def _mottle(mat: bpy.types.Material, dark: tuple[float, float, float], scale: float) -> None:
    """Mottle a material's base colour with darker spots from object-space noise (pits in the worn surface)."""
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = next(node for node in nodes if node.type == "BSDF_PRINCIPLED")
    base = tuple(bsdf.inputs["Base Color"].default_value)
    coords = nodes.new("ShaderNodeTexCoord")
    noise = nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = scale
    noise.inputs["Detail"].default_value = 6.0
    ramp = nodes.new("ShaderNodeValToRGB")
    low, high = ramp.color_ramp.elements
    low.position, low.color = 0.42, (*dark, 1.0)
    high.position, high.color = 0.55, base
    links.new(coords.outputs["Object"], noise.inputs["Vector"])
    links.new(noise.outputs["Fac"], ramp.inputs["Fac"])
    links.new(ramp.outputs["Color"], bsdf.inputs["Base Color"])


class WindTurbineScene(NamedMaterialScene):
    """Builds the turbine once; per image it lays an erosion decal on the inspected blade (or not) and sets the sun."""

    key = "wind_turbine"
    defect_types = DEFECT_TYPES
    viewpoint_range = VIEWPOINT_RANGE
    camera_fov_deg = CAMERA_FOV_DEG
    defect_category_id = DEFECT_CATEGORY
    light = "day"
    object_radius = 7.5  # metres: the blade section in view (half the frame diagonal at the farthest drone pose)

    def __init__(self, bproc: ModuleType) -> None:
        self._bproc = bproc
        self._mats = {name: material(bproc, name, spec) for name, spec in MATERIALS.items()}

        # Tower, nacelle and spinner
        self._add("tower", revolve("tower", TOWER_PROFILE), "light_grey")
        nacelle = extrude("nacelle", _rounded_square(NACELLE_SIZE, NACELLE_CORNER), NACELLE_LENGTH)
        self._add("nacelle", nacelle, "light_grey", (NACELLE_FRONT_X - NACELLE_LENGTH / 2, 0.0, HUB_HEIGHT))
        spinner = self._add("spinner", revolve("spinner", SPINNER_PROFILE), "light_grey", (OVERHANG, 0.0, HUB_HEIGHT))
        spinner.rotation_euler = (0.0, math.pi / 2, 0.0)  # revolve axis z onto the rotor axis x

        # Three blades sharing one mesh; blade 0 (up, 30 degrees off vertical) is inspected
        blade = blade_mesh("blade")
        self._blade_matrix = _rotor_matrix(BLADE_AZIMUTHS_DEG[0])
        for i, azimuth in enumerate(BLADE_AZIMUTHS_DEG):
            obj = self._add(f"blade_{i}", blade, "blade_paint")
            set_matrix(obj, _rotor_matrix(azimuth))

        # Erosion decal on the inspected blade, filled per image
        _mottle(self._mats["laminate"], *LAMINATE_PITS)
        self._erosion = self._add("erosion", bpy.data.meshes.new("erosion"), "laminate", category=DEFECT_CATEGORY)
        set_matrix(self._erosion, self._blade_matrix)
        show(self._erosion, False)

        # Day: the sun on the drone's side of the sky; the world (sky, background) belongs to the renderer
        self._sun = Sun(bproc)

    def defect_objects(self) -> list[bpy.types.Object]:
        """Objects whose visible pixels are the defect mask."""
        return [self._erosion]

    def clear_defect(self) -> None:
        """Paint intact."""
        show(self._erosion, False)

    def place_defect(self, rng: np.random.Generator, defect_type: str, viewpoint: Viewpoint) -> dict[str, Any]:
        """Wear the paint off a stretch of the inspected blade's leading edge near the point of interest."""
        if defect_type not in DEFECT_TYPES:
            raise ValueError(f"{self.key} has no defect type {defect_type!r}; known: {list(DEFECT_TYPES)}")
        centre = INSPECTED_SPAN + float(rng.uniform(-EROSION_CENTRE_SPREAD, EROSION_CENTRE_SPREAD))
        length = float(rng.uniform(*EROSION_SPAN_FRACTION))
        pressure = float(rng.uniform(*EROSION_PRESSURE_WRAP))
        suction = float(rng.uniform(*EROSION_SUCTION_WRAP))
        jitter = rng.uniform(-EROSION_RAGGEDNESS, EROSION_RAGGEDNESS, size=(3, EROSION_ROWS))
        replace_mesh(
            self._erosion, self._erosion_mesh(centre, length, pressure, suction, jitter), self._mats["laminate"]
        )
        show(self._erosion, True)
        bpy.context.view_layer.update()
        return {
            "type": defect_type,
            "span_fraction": centre,
            "length_fraction": length,
            "pressure_wrap": pressure,
            "suction_wrap": suction,
        }

    @staticmethod
    def _erosion_mesh(
        centre: float, length: float, pressure: float, suction: float, jitter: np.ndarray
    ) -> bpy.types.Mesh:
        """A ragged strip over the leading edge, blade-local, lifted off the surface along its outward normal."""
        t = np.linspace(-1.0, 1.0, EROSION_ROWS)
        # Lumpy rather than saw-toothed: half the jitter smoothed over neighbouring rows
        smooth = np.stack([np.convolve(np.pad(j, 1, mode="edge"), (0.25, 0.5, 0.25), mode="valid") for j in jitter])
        jitter = 0.5 * jitter + smooth
        rows_u = centre + 0.5 * length * (t + jitter[2] * 2.0 / EROSION_ROWS)  # ragged spanwise ends too
        rows_u = np.sort(rows_u)
        envelope = EROSION_END_WIDTH + (1 - EROSION_END_WIDTH) * np.sqrt(np.clip(1 - t**2, 0.0, 1.0))
        verts = []
        for u, env, js, jp in zip(rows_u, envelope, jitter[0], jitter[1], strict=True):
            # chord-fraction wrap -> loop parameter (about proportional to the arc round the nose), then the outline
            low = -np.arccos(1 - 2 * suction) * env * (1 + js)
            high = np.arccos(1 - 2 * pressure) * env * (1 + jp)
            sigma = np.linspace(low, high, EROSION_COLUMNS)
            points = section_points(u, sigma)
            d_sigma = section_points(u, sigma + NORMAL_STEP) - section_points(u, sigma - NORMAL_STEP)
            d_span = section_points(u + NORMAL_STEP, sigma) - section_points(u - NORMAL_STEP, sigma)
            normal = np.cross(d_sigma, d_span)
            normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
            outward = points - np.array([0.0, 0.0, points[0, 2]])  # from the pitch axis
            normal *= np.sign(np.sum(normal * outward, axis=-1, keepdims=True))
            verts.append(points + DECAL_OFFSET_FRACTION * _planform(u)[0] * normal)
        c = EROSION_COLUMNS
        faces = [
            (i * c + j, i * c + j + 1, (i + 1) * c + j + 1, (i + 1) * c + j)
            for i in range(EROSION_ROWS - 1)
            for j in range(c - 1)
        ]
        return mesh("erosion", np.concatenate(verts).tolist(), faces, smooth=True)

    def place_lights(self, rng: np.random.Generator, viewpoint: Viewpoint) -> dict[str, Any]:
        """The sun on the drone's side of the sky."""
        return self._sun.place(rng, viewpoint)

    def surface_materials(self) -> list[bpy.types.Material]:
        """Materials that weather (US): blade paint, nacelle, spinner and tower; not the exposed laminate."""
        return [mat for name, mat in self._mats.items() if name != "laminate"]
