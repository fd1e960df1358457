"""US, the uncontrolled surface (paper 3.1): the object's materials mixed with a degradation material.

Every material of the object of interest (the builder's `surface_materials()`) gets a Mix Shader between its own
shader and a rough "degradation" BSDF coloured by a texture (dust, rust or dirt) from the split's pool. The mix factor
is the texture's coverage: a noise field thresholded per image, times a strength, in object coordinates scaled to the
object, so patches sit on the object like real weathering. Controlled: the mix factor is 0 (clean material).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bpy
import numpy as np

from miad.render import pools

COVERAGE_THRESHOLD = (0.40, 0.60)  # noise level above which the surface is degraded: lower = more coverage
COVERAGE_SOFTNESS = 0.08  # width of the transition, in noise units
STRENGTH = (0.4, 0.85)  # opacity of the degradation where it covers
PATCH_SCALE = (1.0, 3.0)  # noise features per object radius
TEXTURE_TILE = (0.3, 0.8)  # texture tile size in object radii
DEGRADED_ROUGHNESS = 0.95


class SurfaceFactor:
    """Weathers the object's materials per image; `enabled` False leaves them clean (and adds no nodes)."""

    def __init__(self, materials: list[bpy.types.Material], enabled: bool, assets: Path, object_radius: float) -> None:
        self.enabled = enabled
        self._radius = object_radius
        self._rigs: list[dict[str, Any]] = []
        self._pools = {s: pools.textures(Path(assets), s) for s in pools.POOL_SIZES} if enabled else {}
        self._images: dict[str, bpy.types.Image] = {}
        if enabled:
            for mat in materials:
                self._rigs.append(_rig(mat))

    def apply(self, rng: np.random.Generator, split: str) -> dict[str, Any]:
        """Draw this image's texture, coverage and placement; return them."""
        if not self.enabled:
            return {"kind": "controlled"}
        pool = self._pools[split]
        name, path = pool[int(rng.integers(len(pool)))]
        if name not in self._images:
            self._images[name] = bpy.data.images.load(str(path))
        threshold = float(rng.uniform(*COVERAGE_THRESHOLD))
        strength = float(rng.uniform(*STRENGTH))
        patch = float(rng.uniform(*PATCH_SCALE)) / self._radius
        tile = 1.0 / (float(rng.uniform(*TEXTURE_TILE)) * self._radius)
        offset = rng.uniform(-100.0, 100.0, 3)
        for rig in self._rigs:
            rig["image"].image = self._images[name]
            rig["tile"].inputs["Scale"].default_value = (tile, tile, tile)
            rig["tile"].inputs["Location"].default_value = tuple(map(float, offset))
            rig["noise"].inputs["Scale"].default_value = patch
            rig["noise_map"].inputs["Location"].default_value = tuple(map(float, offset))
            rig["ramp"].inputs["From Min"].default_value = threshold - COVERAGE_SOFTNESS
            rig["ramp"].inputs["From Max"].default_value = threshold + COVERAGE_SOFTNESS
            rig["ramp"].inputs["To Max"].default_value = strength
        return {"kind": name.split("/")[1], "pool": split, "name": name, "threshold": threshold, "strength": strength}


def _rig(mat: bpy.types.Material) -> dict[str, Any]:
    """Insert texture -> degradation BSDF and noise -> coverage between `mat`'s shader and its output."""
    tree = mat.node_tree
    nodes, links = tree.nodes, tree.links
    output = next(n for n in nodes if n.type == "OUTPUT_MATERIAL" and n.is_active_output)
    surface = output.inputs["Surface"]
    if not surface.links:
        raise ValueError(f"material {mat.name!r} has no shader on its output")
    original = surface.links[0].from_socket
    coords = nodes.new("ShaderNodeTexCoord")
    tile = nodes.new("ShaderNodeMapping")
    image = nodes.new("ShaderNodeTexImage")
    image.interpolation = "Linear"
    noise_map = nodes.new("ShaderNodeMapping")
    noise = nodes.new("ShaderNodeTexNoise")
    noise.inputs["Detail"].default_value = 6.0
    noise.inputs["Roughness"].default_value = 0.6
    ramp = nodes.new("ShaderNodeMapRange")  # noise -> coverage in [0, strength], clamped
    ramp.clamp = True
    degraded = nodes.new("ShaderNodeBsdfPrincipled")
    degraded.inputs["Roughness"].default_value = DEGRADED_ROUGHNESS
    mix = nodes.new("ShaderNodeMixShader")
    links.new(coords.outputs["Object"], tile.inputs["Vector"])
    links.new(tile.outputs["Vector"], image.inputs["Vector"])
    links.new(image.outputs["Color"], degraded.inputs["Base Color"])
    links.new(coords.outputs["Object"], noise_map.inputs["Vector"])
    links.new(noise_map.outputs["Vector"], noise.inputs["Vector"])
    links.new(noise.outputs["Fac"], ramp.inputs["Value"])
    links.new(ramp.outputs["Result"], mix.inputs["Fac"])
    links.new(original, mix.inputs[1])
    links.new(degraded.outputs["BSDF"], mix.inputs[2])
    links.new(mix.outputs["Shader"], surface)
    return {"image": image, "tile": tile, "noise": noise, "noise_map": noise_map, "ramp": ramp}
