"""Render one scenario: build its scene once, then turn each SamplePlan into a RenderedSample.

Every random draw of an image comes from `np.random.default_rng(plan.seed)`, split into independent streams for
the viewpoint, the defect, the light, the background (UB) and the surface (US), so the same plan rendered with its
defect switched off shows the same view, light, background and weathering, and the same plan rendered with other
factors (the ablation variants) draws the same numbers for everything the factors leave alone. A controlled light
(`plan.light_seed`) replaces the light stream with one seed shared by every image, placed for the controlled view,
so it stays where it is when UV moves the camera. Cycles' own seed is set from the plan too.
The scene is built once per renderer (per shard task); per image only poses, visibility and shader values change.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from miad.catalog import FACTOR_NAMES
from miad.config import RenderConfig
from miad.data.layout import GOOD
from miad.render import bproc as bproc_boot
from miad.render.background import BackgroundFactor
from miad.render.factors import Viewpoint, fixed_viewpoint, sample_viewpoint
from miad.render.plan import RenderedSample, SamplePlan
from miad.render.pose import look_rotation, set_pose
from miad.render.scenarios import scene_builder
from miad.render.surface import SurfaceFactor

MAX_VIEW_ATTEMPTS = 20  # re-draws of viewpoint and defect until the defect shows
PROBE_RESOLUTION = 128  # rays per image side for the visibility check: the same decision at every resolution
MIN_VISIBLE_DEFECT_PIXELS = 5  # at PROBE_RESOLUTION; about the paper's 0.04% of a 128 x 128 frame
MASK_ON = 255


class ScenarioRenderer:
    """Renders plans of one scenario with the given uncontrolled factors.

    One renderer is live per process: building a new one clears the scene of the previous one.
    """

    def __init__(self, scenario: str, factors: tuple[str, ...], render_cfg: RenderConfig, temp_dir: Path) -> None:
        for factor in factors:
            if factor not in FACTOR_NAMES:
                raise ValueError(f"unknown factor {factor!r}; known: {list(FACTOR_NAMES)}")
        builder_cls = scene_builder(scenario)
        self.scenario = scenario
        self.factors = tuple(factors)
        self.render_cfg = render_cfg
        self.last_category_map: np.ndarray | None = None  # (H, W) segmentation of the last render, for checks

        # BlenderProc once per process, a clean scene, then the scenario's static scene
        self._bproc = bproc_boot.bproc_module(Path(temp_dir))
        bproc_boot.init_scene(render_cfg)
        self._generation = bproc_boot.scene_generation()
        self._builder = builder_cls(self._bproc)
        self.defect_category_id = self._builder.defect_category_id  # segmentation id of defect pixels
        self._bproc.camera.set_intrinsics_from_blender_params(
            lens=math.radians(self._builder.camera_fov_deg),
            image_width=render_cfg.resolution,
            image_height=render_cfg.resolution,
            lens_unit="FOV",
        )
        # The factors: UB owns the world (day) or background objects (night), US the object's materials
        self._background = BackgroundFactor(
            self._bproc,
            self._builder.light,
            "ub" in self.factors,
            Path(render_cfg.assets_dir),
            render_cfg.hdri_dir,
            self._builder.object_radius,
            self._builder.camera_fov_deg,
            Path(temp_dir),
        )
        self._surface = SurfaceFactor(
            self._builder.surface_materials(),
            "us" in self.factors,
            Path(render_cfg.assets_dir),
            self._builder.object_radius,
        )
        # Alpha threshold 0: fully transparent "ghost" parts (a missing part's mask, MVTec LOCO) still write their id
        self._bproc.renderer.enable_segmentation_output(
            map_by=["category_id"], default_values={"category_id": 0}, pass_alpha_threshold=0.0
        )

    @property
    def is_live(self) -> bool:
        """False once a newer ScenarioRenderer in this process has cleared this one's scene."""
        return self._generation == bproc_boot.scene_generation()

    def render(self, plan: SamplePlan, defect_override: str | None = None) -> RenderedSample:
        """Render `plan`, or with `defect_override` show another defect type (GOOD: the same image without its defect).

        A defective plan rendered with GOOD keeps its view and light exactly, so the two images differ only where the
        defect is. The record then says what was shown (defect None).
        """
        if not self.is_live:
            raise RuntimeError("this renderer's scene was cleared by a newer ScenarioRenderer in the same process")
        shown = plan.defect_type if defect_override is None else defect_override
        for kind in {plan.defect_type, shown} - {GOOD}:
            if kind not in self._builder.defect_types:
                raise ValueError(f"{self.scenario} has no defect type {kind!r}; known: {self._builder.defect_types}")
        view_rng, defect_rng, light_rng, background_rng, surface_rng = np.random.default_rng(plan.seed).spawn(5)

        # Viewpoint and defect: the defect placed by the plan decides the view, even if another one is shown
        placed = plan.defect_type if plan.defect_type != GOOD else shown
        self._background.hide()  # background objects stay out of the visibility probe
        viewpoint, defect = self._place(plan, placed, view_rng, defect_rng)
        if shown == GOOD:
            self._builder.clear_defect()
            defect = None
        if plan.light_seed is None:
            light = self._builder.place_lights(light_rng, viewpoint)
        else:
            controlled = fixed_viewpoint(self._builder.viewpoint_range)
            light = self._builder.place_lights(np.random.default_rng(plan.light_seed), controlled)
        background = self._background.apply(background_rng, plan.split, viewpoint)
        surface = self._surface.apply(surface_rng, plan.split)

        # Render colours and segmentation in one call, timed, quiet on stdout
        bproc_boot.set_seed(plan.seed)
        with bproc_boot.quiet_stdout():
            start = time.perf_counter()
            data = self._bproc.renderer.render()
            cycles_seconds = time.perf_counter() - start
        colors = np.asarray(data["colors"][0])
        if colors.dtype != np.uint8:
            raise RuntimeError(f"expected 8-bit colours from BlenderProc, got {colors.dtype}")
        image = np.ascontiguousarray(colors[..., :3])  # (H, W, 3)
        categories = np.asarray(data["category_id_segmaps"][0]).astype(np.int64)  # (H, W)
        self.last_category_map = categories
        mask = np.where(categories == self._builder.defect_category_id, MASK_ON, 0).astype(np.uint8)  # (H, W)
        defect_pixels = int(np.count_nonzero(mask))
        if (defect is None) != (defect_pixels == 0):
            raise RuntimeError(f"{plan.stem}: defect {defect} but {defect_pixels} defect pixels in the mask")
        record = {
            "camera": viewpoint.to_record(),
            "factors": {
                **{f: f in self.factors for f in FACTOR_NAMES},
                "viewpoint_range": self._builder.viewpoint_range.to_record(),
            },
            "light": light,
            "background": background,
            "surface": surface,
            "defect": defect,
            "defect_pixels": defect_pixels,
            "object_pixels": int(np.count_nonzero(categories > 0)),  # object of interest and defect together
        }
        return RenderedSample(image=image, mask=mask, record=record, cycles_seconds=cycles_seconds)

    def _place(
        self, plan: SamplePlan, defect_type: str, view_rng: np.random.Generator, defect_rng: np.random.Generator
    ) -> tuple[Viewpoint, dict[str, Any] | None]:
        """Pose the camera and place the defect, re-drawing both until the defect is visible (bounded)."""
        vrange = self._builder.viewpoint_range
        for attempt in range(1, MAX_VIEW_ATTEMPTS + 1):
            viewpoint = (
                sample_viewpoint(view_rng, vrange, plan.split) if "uv" in self.factors else fixed_viewpoint(vrange)
            )
            self._set_camera(viewpoint)
            if defect_type == GOOD:
                self._builder.clear_defect()
                return viewpoint, None
            defect = self._builder.place_defect(defect_rng, defect_type, viewpoint)
            visible = self._visible_pixels(self._builder.defect_objects())
            if visible >= MIN_VISIBLE_DEFECT_PIXELS:
                return viewpoint, {**defect, "view_attempts": attempt, "probe_pixels": visible}
        raise RuntimeError(
            f"{plan.stem} (seed {plan.seed}): defect {defect_type!r} not visible after "
            f"{MAX_VIEW_ATTEMPTS} viewpoint draws"
        )

    def _set_camera(self, viewpoint: Viewpoint) -> None:
        """One camera pose (frame 0) looking at the point of interest (as BlenderProc's add_camera_pose, but with
        the rotation given as float64 Euler angles: see miad.render.pose)."""
        import bpy

        location, target = np.asarray(viewpoint.location), np.asarray(viewpoint.look_at)
        self._bproc.utility.reset_keyframes()
        camera = bpy.context.scene.camera
        set_pose(camera, location, look_rotation(target - location))
        camera.keyframe_insert(data_path="location", frame=0)
        camera.keyframe_insert(data_path="rotation_euler", frame=0)
        bpy.context.scene.frame_end = 1

    def _visible_pixels(self, objects: list[Any]) -> int:
        """Probe pixels (PROBE_RESOLUTION grid) where a camera ray hits one of `objects` first."""
        import bpy
        from bpy_extras.object_utils import world_to_camera_view
        from mathutils import Vector

        scene, camera = bpy.context.scene, bpy.context.scene.camera
        depsgraph = bpy.context.evaluated_depsgraph_get()
        names = {obj.name for obj in objects}
        # Probe only the pixels inside the objects' projected bounding boxes
        corners = [
            world_to_camera_view(scene, camera, obj.matrix_world @ Vector(c))
            for obj in objects
            if len(obj.data.vertices)
            for c in obj.bound_box
        ]
        if not corners:
            return 0
        uv = np.clip(np.array([(c.x, c.y) for c in corners]), 0.0, 1.0)  # (N, 2), origin bottom left
        lo = np.floor(uv.min(axis=0) * PROBE_RESOLUTION).astype(int)
        hi = np.minimum(np.ceil(uv.max(axis=0) * PROBE_RESOLUTION).astype(int), PROBE_RESOLUTION)
        frame = [camera.matrix_world @ v for v in camera.data.view_frame(scene=scene)]  # TR, BR, BL, TL
        origin = camera.matrix_world.translation
        hits = 0
        for px in range(lo[0], hi[0]):
            for py in range(lo[1], hi[1]):
                u, v = (px + 0.5) / PROBE_RESOLUTION, (py + 0.5) / PROBE_RESOLUTION
                point = frame[2] + (frame[1] - frame[2]) * u + (frame[3] - frame[2]) * v
                found, _, _, _, hit, _ = scene.ray_cast(depsgraph, origin, (point - origin).normalized())
                hits += bool(found and hit.name in names)
        return hits
