"""Building blocks every scene builder shares: meshes from profiles, materials, object linking, visibility, lights.

Everything here is plain geometry in metres and radians; no random draws happen without a caller's generator.
Segmentation: every object carries a `category_id` custom property; `OBJECT_CATEGORY` marks the object of
interest, `DEFECT_CATEGORY` the defect mask, 0 anything else (background objects, helpers).
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import bpy  # bmesh is imported where used: it loads only after bpy
import numpy as np

from miad.render.factors import Viewpoint
from miad.render.pose import look_rotation, set_pose

OBJECT_CATEGORY = 1  # the object of interest (its pixels are the "object coverage")
DEFECT_CATEGORY = 2  # defect pixels: the mask
BACKGROUND_CATEGORY = 0  # the world and background objects

GLASS_IOR = 1.52
REVOLVE_SEGMENTS = 96
SMALL_SEGMENTS = 32

# Night: one lamp mounted on the inspection vehicle or UAV, above the camera and a little to the side
SPOT_ENERGY_W = 120.0  # at SPOT_REFERENCE_M from the point of interest; scaled with distance squared
SPOT_REFERENCE_M = 1.8
SPOT_ENERGY_JITTER = (0.8, 1.2)
SPOT_OFFSET_UP_M = 0.35
SPOT_OFFSET_SIDE_M = 0.25
SPOT_SIZE_DEG = 55.0
SPOT_BLEND = 0.35
SPOT_RADIUS_M = 0.08  # soft-edged shadows
SPOT_COLOUR = (1.0, 0.96, 0.90)  # LED lamp, slightly warm

# Day: a sun somewhere in the sky on the camera's side, so the object is not a silhouette
SUN_ELEVATION_DEG = (25.0, 70.0)
SUN_AZIMUTH_FROM_CAMERA_DEG = 75.0  # sun azimuth within this of the camera's
SUN_STRENGTH = (3.0, 4.5)  # W/m^2, with the sky/background as fill light
SUN_ANGLE_DEG = 1.5  # angular diameter: slightly soft shadows
SUN_COLOUR = (1.0, 0.97, 0.92)


def mesh(name: str, verts: list, faces: list, smooth: bool) -> bpy.types.Mesh:
    """Build a mesh with outward normals."""
    import bmesh

    data = bpy.data.meshes.new(name)
    data.from_pydata(verts, [], faces)
    bm = bmesh.new()
    bm.from_mesh(data)
    bmesh.ops.recalc_face_normals(bm, faces=bm.faces)
    for face in bm.faces:
        face.smooth = smooth
    bm.to_mesh(data)
    bm.free()
    return data


def revolve(
    name: str, profile: tuple[tuple[float, float], ...] | np.ndarray, segments: int = REVOLVE_SEGMENTS
) -> bpy.types.Mesh:
    """A closed surface of revolution about z from a closed (radius, z) loop."""
    prof = np.asarray(profile, dtype=float)  # (P, 2)
    angles = np.linspace(0.0, 2 * math.pi, segments, endpoint=False)  # (S,)
    verts = np.stack(
        [
            np.outer(np.cos(angles), prof[:, 0]),
            np.outer(np.sin(angles), prof[:, 0]),
            np.broadcast_to(prof[:, 1], (segments, len(prof))),
        ],
        axis=-1,
    ).reshape(-1, 3)  # (S*P, 3)
    n = len(prof)
    faces = [
        (s * n + p, s * n + (p + 1) % n, ((s + 1) % segments) * n + (p + 1) % n, ((s + 1) % segments) * n + p)
        for s in range(segments)
        for p in range(n)
    ]
    return mesh(name, verts.tolist(), faces, smooth=True)


def extrude(name: str, polygon: list[tuple[float, float]] | tuple, length: float) -> bpy.types.Mesh:
    """A prism along x from a closed polygon in (y, z), centred on x = 0."""
    n = len(polygon)
    verts = [(x, y, z) for x in (-length / 2, length / 2) for y, z in polygon]
    faces = [tuple(range(n)), tuple(range(2 * n - 1, n - 1, -1))]
    faces += [(i, (i + 1) % n, n + (i + 1) % n, n + i) for i in range(n)]
    return mesh(name, verts, faces, smooth=False)


def box(name: str, size: tuple[float, float, float], centre: tuple[float, float, float] = (0, 0, 0)) -> bpy.types.Mesh:
    """An axis-aligned box."""
    half, c = np.asarray(size) / 2, np.asarray(centre)
    corners = [c + half * np.array([sx, sy, sz]) for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]
    faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    return mesh(name, [tuple(v) for v in corners], faces, smooth=False)


def cylinder(name: str, radius: float, length: float, segments: int = SMALL_SEGMENTS) -> bpy.types.Mesh:
    """A closed cylinder along z from z = 0 to z = length."""
    return revolve(name, ((1e-4, 0.0), (radius, 0.0), (radius, length), (1e-4, length)), segments)


def align_z(obj: bpy.types.Object, start: np.ndarray | tuple, end: np.ndarray | tuple) -> None:
    """Place an object built along +z from the origin so that its z axis runs from `start` towards `end`."""
    a, b = np.asarray(start, dtype=np.float64), np.asarray(end, dtype=np.float64)
    set_pose(obj, a, look_rotation(b - a, track="Z"))


def material(bproc: ModuleType, name: str, spec: tuple) -> bpy.types.Material:
    """A Principled BSDF material from (base colour RGB, metallic, roughness, transmission)."""
    colour, metallic, roughness, transmission = spec
    mat = bproc.material.create(name)
    mat.set_principled_shader_value("Base Color", [*colour, 1.0])
    mat.set_principled_shader_value("Metallic", metallic)
    mat.set_principled_shader_value("Roughness", roughness)
    mat.set_principled_shader_value("Transmission Weight", transmission)
    mat.set_principled_shader_value("IOR", GLASS_IOR)
    return mat.blender_obj


def ghost_material(name: str = "ghost") -> bpy.types.Material:
    """A fully transparent material: invisible in colour, yet written to the segmentation pass.

    For logical defects after MVTec LOCO: a missing part is masked where it should be, so its ghost stays in the
    scene with the defect category. Needs the segmentation pass alpha threshold at 0 (see `ScenarioRenderer`).
    """
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    nodes = mat.node_tree.nodes
    for node in list(nodes):
        nodes.remove(node)
    transparent = nodes.new("ShaderNodeBsdfTransparent")
    output = nodes.new("ShaderNodeOutputMaterial")
    mat.node_tree.links.new(transparent.outputs["BSDF"], output.inputs["Surface"])
    return mat


def add_object(
    name: str,
    data: bpy.types.Mesh,
    mat: bpy.types.Material | None,
    location: tuple[float, float, float] | np.ndarray = (0.0, 0.0, 0.0),
    category: int = OBJECT_CATEGORY,
) -> bpy.types.Object:
    """Link a new object using mesh `data` (given material `mat` if it has none) and a segmentation category."""
    obj = bpy.data.objects.new(name, data)
    if mat is not None and not data.materials:
        data.materials.append(mat)
    obj.location = tuple(map(float, location))
    obj["category_id"] = category
    bpy.context.scene.collection.objects.link(obj)
    return obj


class NamedMaterialScene:
    """Mixin for builders that keep their materials by name in `self._mats`: `_add` links an object with one."""

    _mats: dict[str, bpy.types.Material]

    def _add(
        self,
        name: str,
        data: bpy.types.Mesh,
        mat: str,
        location: tuple[float, float, float] = (0, 0, 0),
        category: int = OBJECT_CATEGORY,
    ) -> bpy.types.Object:
        """Link a new object using mesh `data` with material `mat` and a segmentation category."""
        return add_object(name, data, self._mats[mat], location, category)


def show(obj: bpy.types.Object, visible: bool) -> None:
    """Toggle an object for rendering and for ray casts alike."""
    obj.hide_render = not visible
    obj.hide_viewport = not visible


def split_by_material(data: bpy.types.Mesh, slot: int, keep_slot: bool) -> bpy.types.Mesh:
    """The faces of `data` whose material slot is (or is not) `slot`, as a new single-material mesh."""
    import bmesh

    bm = bmesh.new()
    bm.from_mesh(data)
    drop = [f for f in bm.faces if (f.material_index == slot) != keep_slot]
    bmesh.ops.delete(bm, geom=drop, context="FACES")
    for face in bm.faces:
        face.material_index = 0
        face.smooth = face.smooth and not keep_slot  # cut faces are flat, sharp facets
    part = bpy.data.meshes.new(data.name + ("_cut" if keep_slot else "_body"))
    bm.to_mesh(part)
    bm.free()
    return part


def replace_mesh(obj: bpy.types.Object, data: bpy.types.Mesh, mat: bpy.types.Material) -> None:
    """Swap an object's mesh for `data` (with one material) and free the old one."""
    old = obj.data
    data.materials.append(mat)
    obj.data = data
    if old.users == 0:
        bpy.data.meshes.remove(old)


def camera_frame(viewpoint: Viewpoint) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vectors (forward, side, up) of a camera at `viewpoint` looking at its point of interest."""
    cam, target = np.asarray(viewpoint.location), np.asarray(viewpoint.look_at)
    forward = (target - cam) / np.linalg.norm(target - cam)
    side = np.cross(forward, (0.0, 0.0, 1.0))
    side /= np.linalg.norm(side)
    return forward, side, np.cross(side, forward)


class InspectionLamp:
    """Night light: one spotlight above the camera, jittered sideways, aimed at the point of interest."""

    def __init__(self, bproc: ModuleType, energy_w: float = SPOT_ENERGY_W) -> None:
        self._bproc = bproc
        self._energy_w = energy_w
        self._spot = bproc.types.Light(light_type="SPOT", name="inspection_lamp")
        self._spot.set_color(list(SPOT_COLOUR))
        self._spot.blender_obj.data.spot_size = math.radians(SPOT_SIZE_DEG)
        self._spot.blender_obj.data.spot_blend = SPOT_BLEND
        self._spot.blender_obj.data.shadow_soft_size = SPOT_RADIUS_M

    def place(self, rng: np.random.Generator, viewpoint: Viewpoint) -> dict[str, Any]:
        _, side, up = camera_frame(viewpoint)
        target = np.asarray(viewpoint.look_at)
        offset = float(rng.uniform(-SPOT_OFFSET_SIDE_M, SPOT_OFFSET_SIDE_M))
        location = np.asarray(viewpoint.location) + SPOT_OFFSET_UP_M * up + offset * side
        distance = float(np.linalg.norm(target - location))
        energy = self._energy_w * (distance / SPOT_REFERENCE_M) ** 2 * float(rng.uniform(*SPOT_ENERGY_JITTER))
        set_pose(self._spot.blender_obj, location, look_rotation(target - location))
        self._spot.set_energy(energy)
        return {"kind": "spot", "location": location.tolist(), "energy_w": energy}


class Sun:
    """Day light: a sun on the camera's side of the sky at a random elevation; the world adds the fill light."""

    def __init__(self, bproc: ModuleType, strength: tuple[float, float] = SUN_STRENGTH) -> None:
        self._strength = strength
        self._sun = bproc.types.Light(light_type="SUN", name="sun")
        self._sun.set_color(list(SUN_COLOUR))
        self._sun.blender_obj.data.angle = math.radians(SUN_ANGLE_DEG)

    def place(self, rng: np.random.Generator, viewpoint: Viewpoint) -> dict[str, Any]:
        elevation = float(rng.uniform(*SUN_ELEVATION_DEG))
        azimuth = viewpoint.theta + float(rng.uniform(-SUN_AZIMUTH_FROM_CAMERA_DEG, SUN_AZIMUTH_FROM_CAMERA_DEG))
        strength = float(rng.uniform(*self._strength))
        el, az = math.radians(elevation), math.radians(azimuth)
        # A sun lamp shines along its -z axis: point -z from the sky position towards the origin
        towards = -np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
        set_pose(self._sun.blender_obj, (0.0, 0.0, 10.0), look_rotation(towards))
        self._sun.set_energy(strength)
        return {"kind": "sun", "elevation_deg": elevation, "azimuth_deg": azimuth % 360.0, "strength": strength}
