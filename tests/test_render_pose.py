"""Poses in float64 (miad.render.pose) agree with Blender's own conversions, which they replace because those call
the C library's float atan2f/acosf (other bits on glibc 2.41 than on 2.36)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from miad.render.pose import euler_xyz, look_rotation, set_matrix, set_pose

bpy = pytest.importorskip("bpy")
from mathutils import Euler, Vector  # noqa: E402  (mathutils loads with bpy)

RNG = np.random.default_rng(7)
DIRECTIONS = [RNG.normal(size=3) for _ in range(50)] + [np.array([1.0, 0.0, 0.0]), np.array([0.3, -2.0, -0.1])]


@pytest.mark.parametrize("track", ["-Z", "Z"])
def test_look_rotation_is_blenders_track_quat(track: str) -> None:
    for direction in DIRECTIONS:
        ours = look_rotation(direction, track)
        blender = np.array(Vector(tuple(direction)).to_track_quat(track, "Y").to_matrix())
        np.testing.assert_allclose(ours, blender, atol=2e-6)
        np.testing.assert_allclose(ours.T @ ours, np.eye(3), atol=1e-12)  # orthonormal, in double precision
        assert np.linalg.det(ours) == pytest.approx(1.0)


def test_look_rotation_straight_down_and_up_is_a_proper_rotation() -> None:
    for direction in ([0.0, 0.0, -3.0], [0.0, 0.0, 2.0]):
        rotation = look_rotation(direction)
        np.testing.assert_allclose(rotation.T @ rotation, np.eye(3), atol=1e-12)
        np.testing.assert_allclose(-rotation[:, 2], np.asarray(direction) / np.linalg.norm(direction), atol=1e-12)
    with pytest.raises(ValueError, match="zero-length"):
        look_rotation([0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="track"):
        look_rotation([1.0, 0.0, 0.0], track="Y")


def test_euler_xyz_gives_back_the_rotation_through_blenders_euler() -> None:
    for direction in DIRECTIONS:
        rotation = look_rotation(direction)
        np.testing.assert_allclose(np.array(Euler(euler_xyz(rotation), "XYZ").to_matrix()), rotation, atol=2e-6)
    locked = np.array(Euler((0.4, math.pi / 2, 0.0), "XYZ").to_matrix(), dtype=np.float64)  # gimbal lock
    np.testing.assert_allclose(np.array(Euler(euler_xyz(locked), "XYZ").to_matrix()), locked, atol=2e-6)


def test_set_pose_and_set_matrix_place_a_blender_object() -> None:
    obj = bpy.data.objects.new("pose_probe", None)
    bpy.context.scene.collection.objects.link(obj)
    try:
        rotation = look_rotation([1.0, 2.0, -0.5])
        set_pose(obj, (1.0, -2.0, 3.0), rotation)
        bpy.context.view_layer.update()
        world = np.array(obj.matrix_world)
        np.testing.assert_allclose(world[:3, :3], rotation, atol=2e-6)
        np.testing.assert_allclose(world[:3, 3], (1.0, -2.0, 3.0), atol=1e-6)
        matrix = np.eye(4)
        matrix[:3, :3] = look_rotation([0.0, 1.0, 1.0]) * np.array([2.0, 0.5, 1.0])
        matrix[:3, 3] = (0.5, 0.25, -1.0)
        set_matrix(obj, matrix)
        bpy.context.view_layer.update()
        np.testing.assert_allclose(np.array(obj.matrix_world), matrix, atol=2e-6)
        with pytest.raises(ValueError, match="mirroring"):
            set_matrix(obj, np.diag([-1.0, 1.0, 1.0, 1.0]))
    finally:
        bpy.data.objects.remove(obj)
