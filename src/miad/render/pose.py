"""Object poses computed in float64 NumPy and given to Blender as location, XYZ Euler angles and scale.

Why not Blender's own conversions: setting `matrix_world` (BlenderProc's `add_camera_pose`, `set_rotation_mat`)
makes Blender decompose the matrix into Euler angles with the C library's float `atan2f`, and `to_track_quat`
calls `acosf`. Those functions changed in glibc 2.41 (correctly rounded since), so the same params rendered other
pixels on Debian 13 than on Debian 12 (found by running the render under Debian 13's C library: forwarding
`atan2f` alone to Debian 12's restored the bytes). Here rotations are built and decomposed in double precision
(`math.atan2` is the same in every glibc), and Blender turns the Euler angles back into a matrix with double
`sin`/`cos`, which did not change either.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

WORLD_UP = np.array([0.0, 0.0, 1.0])
FALLBACK_UP = np.array([0.0, 1.0, 0.0])  # the up hint when the tracked axis is vertical
DEGENERATE = 1e-9  # |up hint projected off the tracked axis| below this: take the fallback hint


def look_rotation(direction: Sequence[float] | np.ndarray, track: str = "-Z") -> np.ndarray:
    """(3, 3) rotation (columns: the object's x, y, z axes in world coordinates) whose `track` axis ("-Z" for
    cameras and lamps, "Z" for parts built along +z) points along `direction`, with the object's y axis as close
    to world up as it can be (Blender's `to_track_quat(track, "Y")`)."""
    d = np.asarray(direction, dtype=np.float64)
    length = float(np.linalg.norm(d))
    if not length > 0:
        raise ValueError(f"cannot point an object along a zero-length direction {d.tolist()}")
    if track not in ("Z", "-Z"):
        raise ValueError(f"track must be 'Z' or '-Z', got {track!r}")
    z = d / length if track == "Z" else -d / length
    y = WORLD_UP - (WORLD_UP @ z) * z
    if np.linalg.norm(y) < DEGENERATE:  # looking straight up or down: any up will do, take a fixed one
        y = FALLBACK_UP - (FALLBACK_UP @ z) * z
    y = y / np.linalg.norm(y)
    x = np.cross(y, z)
    return np.column_stack([x, y, z])


def euler_xyz(rotation: np.ndarray) -> tuple[float, float, float]:
    """Blender's XYZ Euler angles (R = Rz @ Ry @ Rx) of a (3, 3) rotation matrix, in double precision."""
    r = np.asarray(rotation, dtype=np.float64)
    cos_y = math.hypot(float(r[0, 0]), float(r[1, 0]))
    if cos_y > 1e-12:
        x = math.atan2(float(r[2, 1]), float(r[2, 2]))
        z = math.atan2(float(r[1, 0]), float(r[0, 0]))
    else:  # gimbal lock: fold all rotation about z into x
        x = math.atan2(-float(r[1, 2]), float(r[1, 1]))
        z = 0.0
    y = math.atan2(-float(r[2, 0]), cos_y)
    return x, y, z


def set_pose(obj: Any, location: Sequence[float], rotation: np.ndarray) -> None:
    """Place a Blender object at `location` with the (3, 3) `rotation`, as XYZ Euler angles."""
    obj.rotation_mode = "XYZ"
    obj.location = tuple(float(v) for v in location)
    obj.rotation_euler = euler_xyz(rotation)


def set_matrix(obj: Any, matrix: np.ndarray) -> None:
    """Give a Blender object the (4, 4) world matrix `matrix` (rotation and positive scale, no shear)."""
    m = np.asarray(matrix, dtype=np.float64)
    scale = np.linalg.norm(m[:3, :3], axis=0)  # (3,) column lengths
    if np.linalg.det(m[:3, :3]) < 0 or not np.all(scale > 0):
        raise ValueError("set_matrix takes rotations with positive scale only (no mirroring, no zero scale)")
    set_pose(obj, m[:3, 3], m[:3, :3] / scale)
    obj.scale = tuple(float(s) for s in scale)
