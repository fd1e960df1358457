"""The only place that knows how BlenderProc 2.8 is bootstrapped in-process on pip `bpy`.

BlenderProc expects to be started by its own CLI inside Blender's bundled Python. With pip `bpy` we are already
inside Blender, so we replay what the CLI and `bproc.init()` do, skip what fails on pip bpy (pip setup, the UI
language), and pin every render setting that changes the output bytes.

Determinism: the same plan and config give byte-identical image and mask in any process. Checked on CPU by
rendering the same plans in separate processes, in forward and reverse order, with 1 and 2 threads, with the OIDN
denoiser on, and with persistent data on and off: every sha256 matched. What this rests on:
- Cycles' seed is set per image from the plan (`set_seed`) and never animated (the thread count and the CPU
  denoiser did not change the bytes, so both follow the config);
- adaptive sampling is off (a fixed sample count per pixel) and so is the time limit;
- 8-bit output is not dithered (Blender's dither is deterministic too, but it adds noise we do not want);
- the view transform is "Standard" with no look, exposure 0 and gamma 1, so colours do not depend on Blender's
  default view transform (AgX in 4.2, Filmic in BlenderProc);
- persistent data is off, so nothing is carried from one image to the next (no speed gain for scenes this small).
GPU renders differ from CPU renders (other kernels, other denoiser): compare across devices with tolerances.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import sys
import typing
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from miad.config import RenderConfig

_OUTSIDE_ENV = "OUTSIDE_OF_THE_INTERNAL_BLENDER_PYTHON_ENVIRONMENT_BUT_IN_RUN_SCRIPT"
_INSIDE_ENV = "INSIDE_OF_THE_INTERNAL_BLENDER_PYTHON_ENVIRONMENT"
CYCLES_SEED_MODULUS = 2**31  # Cycles' seed property accepts [0, 2**31 - 1]
VIEW_TRANSFORM = "Standard"  # plain sRGB: what a camera's JPEG looks like, stable across Blender versions
LIGHT_BOUNCES = {  # enough for a glass shed seen through its neighbours, cheap at 16 spp
    "diffuse_bounces": 2,
    "glossy_bounces": 2,
    "ao_bounces_render": 0,
    "max_bounces": 6,
    "transmission_bounces": 4,
    "transparent_max_bounces": 4,
    "volume_bounces": 0,
}
INDIRECT_CLAMP = 3.0  # cap on one indirect sample's radiance: removes fireflies from glass at low spp
GLOSSY_FILTER = 1.0  # Cycles' "filter glossy": trades a little sharpness of reflections for much less noise
GPU_DEVICE_TYPES = ["OPTIX", "CUDA", "HIP"]  # tried in this order when the config asks for a GPU

_module: ModuleType | None = None
_scene_generation = 0  # bumped by every init_scene(); a renderer built before the last init is stale


def bproc_module(temp_dir: Path) -> ModuleType:
    """Return the `blenderproc` module, bootstrapped once per process, writing its files under `temp_dir`.

    Idempotent: later calls only move BlenderProc's temp dir (each renderer owns one, so parallel processes
    never share a directory).
    """
    global _module
    if _module is None:
        _module = _bootstrap()
    from blenderproc.python.utility.SetupUtility import SetupUtility

    SetupUtility.setup_utility_paths(str(Path(temp_dir).resolve()))
    return _module


def _bootstrap() -> ModuleType:
    """Import bpy and blenderproc as BlenderProc's CLI would, without its pip setup."""
    site_dirs = [p for p in sys.path if p.endswith("site-packages")]
    # First import: the "run script" flag lets blenderproc's __init__ load without the CLI
    os.environ.pop(_INSIDE_ENV, None)
    os.environ[_OUTSIDE_ENV] = "1"
    import blenderproc
    import bpy  # noqa: F401  (loads Blender itself)
    from blenderproc.python.utility.SetupUtility import SetupUtility

    # Pretend the CLI's pip setup already ran: our venv holds every package BlenderProc needs
    SetupUtility.setup_pip = staticmethod(lambda *args, **kwargs: site_dirs[0])
    SetupUtility.main_setup_called = True
    # Second import "inside Blender" loads the API; its __init__ removes one copy of its parent dir from sys.path
    os.environ[_INSIDE_ENV] = "1"
    del os.environ[_OUTSIDE_ENV]
    sys.path.extend(site_dirs)
    blenderproc = importlib.reload(blenderproc)
    for path in site_dirs:
        if path not in sys.path:
            sys.path.append(path)
    # Only __init__ reads the flag: drop it so child processes (workers, tests) bootstrap from scratch too
    del os.environ[_INSIDE_ENV]
    atexit.register(_clear_typing_caches)
    return blenderproc


def _clear_typing_caches() -> None:
    """Drop typing's caches at exit, before bpy's own exit handler runs (atexit is last in, first out).

    BlenderProc's annotations (e.g. `List[Optional[Material]]`) leave its classes in typing's caches; with them alive,
    pip bpy 4.2 crashes (SIGSEGV in bpy_class_free) after the interpreter finalised, turning every exit code into 139.
    """
    for clear in typing._cleanups:  # type: ignore[attr-defined]
        clear()


def scene_generation() -> int:
    """How many times init_scene() ran in this process (a renderer remembers the value it built under)."""
    return _scene_generation


@contextlib.contextmanager
def quiet_stdout(enabled: bool = True) -> Iterator[None]:
    """Silence stdout: Blender's C-level prints on fd 1 and Python's `sys.stdout` (BlenderProc's prints and progress
    bar), both to /dev/null, so progress bars of the caller stay intact; stderr stays visible."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            os.dup2(sink.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def init_scene(render_cfg: RenderConfig) -> None:
    """Do what `bproc.init()` does and apply our render settings.

    Left out of `bproc.init()`: the UI language (fails on pip bpy), the global random seeding from
    BLENDER_PROC_RANDOM_SEED (we never draw from global random state) and its refusal to run twice.

    Clears every object, material and compositor node, so any scene built before is gone.
    """
    global _scene_generation
    if _module is None:
        raise RuntimeError("call bproc_module(temp_dir) before init_scene()")
    import bpy
    from blenderproc.python.renderer import RendererUtility
    from blenderproc.python.utility.GlobalStorage import GlobalStorage
    from blenderproc.python.utility.Initializer import _Initializer, clean_up

    scene = bpy.context.scene
    with quiet_stdout():
        # bproc.init(): empty scene, a camera, Cycles on the configured device, BlenderProc's defaults
        clean_up(clean_up_camera=True)
        _scene_generation += 1  # whatever was built before is gone from here on
        _reset_compositor(scene)
        GlobalStorage.set("output", [])
        scene.render.engine = "CYCLES"
        if render_cfg.device == "gpu":
            RendererUtility.set_render_devices(desired_gpu_device_type=GPU_DEVICE_TYPES)
            if scene.cycles.device != "GPU":
                raise RuntimeError(f"render.device is 'gpu' but Cycles found no {'/'.join(GPU_DEVICE_TYPES)} device")
        else:
            RendererUtility.set_render_devices(use_only_cpu=True)
        _Initializer.set_default_parameters()
    GlobalStorage.set("bproc_init_complete", True)

    # Sampling: fixed count, no adaptive stop, optional OIDN denoiser, configured threads
    RendererUtility.set_max_amount_of_samples(render_cfg.samples)
    scene.cycles.use_adaptive_sampling = False
    RendererUtility.set_denoiser("INTEL" if render_cfg.denoise else None)
    RendererUtility.set_cpu_threads(render_cfg.threads)
    RendererUtility.set_light_bounces(**LIGHT_BOUNCES)
    # Low-spp noise control: no caustics, clamped indirect light, blurred glossy (glass stays calm at 16 spp)
    scene.cycles.caustics_reflective = False
    scene.cycles.caustics_refractive = False
    scene.cycles.sample_clamp_indirect = INDIRECT_CLAMP
    scene.cycles.blur_glossy = GLOSSY_FILTER
    scene.cycles.use_animated_seed = False
    scene.cycles.time_limit = 0.0
    scene.render.use_persistent_data = False

    # Image: square, 100%, no motion blur, 8-bit RGB PNG without dither
    scene.render.resolution_x = render_cfg.resolution
    scene.render.resolution_y = render_cfg.resolution
    scene.render.resolution_percentage = 100
    scene.render.use_motion_blur = False
    scene.render.dither_intensity = 0.0
    RendererUtility.set_output_format(
        file_format="PNG", color_depth=8, enable_transparency=False, view_transform=VIEW_TRANSFORM
    )

    # Colour management: fixed and neutral
    scene.display_settings.display_device = "sRGB"
    scene.view_settings.look = "None"
    scene.view_settings.exposure = 0.0
    scene.view_settings.gamma = 1.0
    scene.view_settings.use_curve_mapping = False
    scene.sequencer_colorspace_settings.name = "sRGB"
    scene.render.image_settings.color_management = "FOLLOW_SCENE"


def _reset_compositor(scene: Any) -> None:
    """Drop compositor nodes left by an earlier init (clean_up keeps the scene, and with it its node tree)."""
    if scene.node_tree is None:
        return
    tree = scene.node_tree
    for node in list(tree.nodes):
        tree.nodes.remove(node)
    render_layers = tree.nodes.new("CompositorNodeRLayers")
    composite = tree.nodes.new("CompositorNodeComposite")
    tree.links.new(render_layers.outputs["Image"], composite.inputs["Image"])


def set_seed(seed: int) -> None:
    """Seed Cycles' sampling pattern for the next render (folded into the range Cycles accepts)."""
    import bpy

    bpy.context.scene.cycles.seed = seed % CYCLES_SEED_MODULUS
