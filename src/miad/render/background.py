"""UB, the uncontrolled background (paper 3.1), for day and night scenes.

Day: the world is an equirectangular background (sky above, ground below) drawn per image from the split's pool
(asset-library plates, optionally HDRIs), turned to a random heading; controlled, it is one fixed plate that no pool
contains. Night: the world stays black and a set of background objects (poles, cabinets, trees, fence panels, built
once) is arranged behind the object of interest after a layout drawn from the split's pool of layout ids, relative
to the camera so that it shows; controlled, they are hidden. Background objects carry segmentation category 0.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import ModuleType
from typing import Any

import bpy
import numpy as np

from miad.assets import ASSET_SEED, background_image
from miad.data.shards import encode_png
from miad.render import pools
from miad.render.factors import Viewpoint
from miad.render.scenarios import common

CONTROLLED_PLATE_KEY = 99  # fixed plate of the controlled background: drawn apart from both pools' seeds
DAY_STRENGTH = (0.8, 1.2)  # world strength jitter with UB on (controlled: 1.0)
HDRI_STRENGTH = 1.0
WORLD_MAP_RESOLUTION = 256  # px, the world's light-sampling importance map
# Night: background objects, their size relative to the object of interest, placed behind it in the camera's view
N_NIGHT_OBJECTS = 7
NIGHT_KINDS = ("pole", "cabinet", "tree", "fence")
NIGHT_SIZE = {  # (x, y, z) extents in object radii
    "pole": (0.12, 0.12, 5.0),
    "cabinet": (1.2, 0.8, 1.8),
    "tree": (1.6, 1.6, 3.5),
    "fence": (3.0, 0.05, 1.2),
}
NIGHT_DEPTH = (1.8, 6.0)  # behind the object: extra distance beyond the point of interest, in object radii
NIGHT_SPREAD = 1.3  # lateral spread, in half-widths of the view at that depth
NIGHT_ALBEDO = (0.08, 0.45)  # dull paint, bark, concrete


class BackgroundFactor:
    """Sets the world (day) or arranges background objects (night) per image; `enabled` False = controlled."""

    def __init__(
        self,
        bproc: ModuleType,
        light: str,
        enabled: bool,
        assets: Path,
        hdri_dir: str | None,
        object_radius: float,
        camera_fov_deg: float,
        temp_dir: Path,
    ) -> None:
        if light not in ("day", "night"):
            raise ValueError(f"light must be 'day' or 'night', got {light!r}")
        self.light, self.enabled = light, enabled
        self._object_radius = object_radius
        self._half_fov = math.radians(camera_fov_deg) / 2
        self._pools = {}
        self._objects: list[bpy.types.Object] = []
        if light == "day":
            self._setup_world(Path(temp_dir))
            if enabled:
                self._pools = {s: pools.day_backgrounds(Path(assets), s, hdri_dir) for s in pools.POOL_SIZES}
        else:
            bproc.renderer.set_world_background([0.0, 0.0, 0.0], strength=0.0)
            if enabled:
                self._build_night_objects()

    # --- day -------------------------------------------------------------------------------------------------------
    def _setup_world(self, temp_dir: Path) -> None:
        """World = environment texture (equirectangular) turned by a mapping node; starts on the controlled plate."""
        world = bpy.context.scene.world or bpy.data.worlds.new("World")
        bpy.context.scene.world = world
        world.use_nodes = True
        # Light sampling of the world: a small fixed importance map. Cycles' automatic one (1024 px) is rebuilt for
        # every render and took 80% of a 128 px day render; 256 px keeps HDRI suns sampled well at a tenth the cost
        world.cycles.sampling_method = "MANUAL"
        world.cycles.sample_map_resolution = WORLD_MAP_RESOLUTION
        nodes, links = world.node_tree.nodes, world.node_tree.links
        for node in list(nodes):
            nodes.remove(node)
        coords = nodes.new("ShaderNodeTexCoord")
        self._mapping = nodes.new("ShaderNodeMapping")
        self._env = nodes.new("ShaderNodeTexEnvironment")
        self._env.interpolation = "Cubic"
        self._world_bg = nodes.new("ShaderNodeBackground")
        output = nodes.new("ShaderNodeOutputWorld")
        links.new(coords.outputs["Generated"], self._mapping.inputs["Vector"])
        links.new(self._mapping.outputs["Vector"], self._env.inputs["Vector"])
        links.new(self._env.outputs["Color"], self._world_bg.inputs["Color"])
        links.new(self._world_bg.outputs["Background"], output.inputs["Surface"])
        plate = temp_dir / "controlled_background.png"
        plate.write_bytes(encode_png(background_image(np.random.default_rng([ASSET_SEED, CONTROLLED_PLATE_KEY]))))
        self._controlled = bpy.data.images.load(str(plate))
        self._images: dict[str, bpy.types.Image] = {}

    def _image(self, name: str, path: Path) -> bpy.types.Image:
        if name not in self._images:
            self._images[name] = bpy.data.images.load(str(path))
        return self._images[name]

    def _apply_day(self, rng: np.random.Generator, split: str) -> dict[str, Any]:
        if not self.enabled:
            self._env.image = self._controlled
            self._mapping.inputs["Rotation"].default_value = (0.0, 0.0, 0.0)
            self._world_bg.inputs["Strength"].default_value = 1.0
            return {"kind": "controlled"}
        pool = self._pools[split]
        name, path = pool[int(rng.integers(len(pool)))]
        heading = float(rng.uniform(0.0, 360.0))
        is_hdri = name.startswith(pools.HDRI_PREFIX)
        strength = HDRI_STRENGTH if is_hdri else float(rng.uniform(*DAY_STRENGTH))
        self._env.image = self._image(name, path)
        self._mapping.inputs["Rotation"].default_value = (0.0, 0.0, math.radians(heading))
        self._world_bg.inputs["Strength"].default_value = strength
        kind = "hdri" if is_hdri else "plate"
        return {"kind": kind, "pool": split, "name": name, "heading_deg": heading, "strength": strength}

    # --- night -----------------------------------------------------------------------------------------------------
    def _build_night_objects(self) -> None:
        """One object per slot, unit-sized; a layout scales, colours and places them."""
        for k in range(N_NIGHT_OBJECTS):
            kind = NIGHT_KINDS[k % len(NIGHT_KINDS)]
            if kind == "tree":
                data = common.revolve(
                    f"bg_{kind}_{k}",
                    ((1e-3, 0.0), (0.08, 0.0), (0.08, 0.3), (0.5, 0.3), (0.35, 0.6), (0.25, 0.8), (1e-3, 1.0)),
                    24,
                )
            elif kind == "pole":
                data = common.cylinder(f"bg_{kind}_{k}", 0.5, 1.0, 16)
            else:
                data = common.box(f"bg_{kind}_{k}", (1.0, 1.0, 1.0), (0.0, 0.0, 0.5))
            mat = bpy.data.materials.new(f"bg_{kind}_{k}")
            mat.use_nodes = True
            obj = common.add_object(f"bg_{kind}_{k}", data, mat, category=common.BACKGROUND_CATEGORY)
            obj["kind"] = kind
            common.show(obj, False)
            self._objects.append(obj)

    def hide(self) -> None:
        """Hide background objects (while the renderer probes the defect's visibility)."""
        for obj in self._objects:
            common.show(obj, False)

    def _apply_night(self, split: str, rng: np.random.Generator, viewpoint: Viewpoint) -> dict[str, Any]:
        if not self.enabled:
            return {"kind": "controlled"}
        layouts = pools.night_layouts(split)
        layout = layouts[int(rng.integers(len(layouts)))]
        self._arrange(layout, viewpoint)
        return {"kind": "night_layout", "pool": split, "layout": layout}

    def _arrange(self, layout: int, viewpoint: Viewpoint) -> None:
        """Place every background object after `layout` (its own seed), behind the object as the camera sees it."""
        layout_rng = np.random.default_rng([ASSET_SEED, 7, layout])
        forward, side, _ = common.camera_frame(viewpoint)
        ground_forward = forward * np.array([1.0, 1.0, 0.0])
        ground_forward /= max(float(np.linalg.norm(ground_forward)), 1e-9)
        target = np.asarray(viewpoint.look_at)
        radius = self._object_radius
        for obj in self._objects:
            size = np.asarray(NIGHT_SIZE[obj["kind"]]) * radius * layout_rng.uniform(0.7, 1.4)
            depth = radius * (float(layout_rng.uniform(*NIGHT_DEPTH)) + float(size[:2].max()) / radius / 2)
            half_width = (viewpoint.r + depth) * math.tan(self._half_fov)
            lateral = float(layout_rng.uniform(-NIGHT_SPREAD, NIGHT_SPREAD)) * half_width
            base = target + depth * ground_forward + lateral * side
            base[2] = target[2] - radius * float(layout_rng.uniform(0.5, 2.5))
            obj.location = tuple(map(float, base))
            obj.rotation_euler = (0.0, 0.0, float(layout_rng.uniform(0.0, 2 * math.pi)))
            obj.scale = tuple(map(float, size))
            albedo = float(layout_rng.uniform(*NIGHT_ALBEDO))
            tint = layout_rng.uniform(0.8, 1.2, 3) * albedo
            bsdf = obj.active_material.node_tree.nodes["Principled BSDF"]
            bsdf.inputs["Base Color"].default_value = (*map(float, np.clip(tint, 0, 1)), 1.0)
            bsdf.inputs["Roughness"].default_value = 0.8
            common.show(obj, True)

    def apply(self, rng: np.random.Generator, split: str, viewpoint: Viewpoint) -> dict[str, Any]:
        """Set this image's background; return what was chosen (pool and name or layout id)."""
        if self.light == "day":
            return self._apply_day(rng, split)
        return self._apply_night(split, rng, viewpoint)
