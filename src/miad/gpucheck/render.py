"""Render one shard on a chosen Cycles GPU backend (OptiX or CUDA) in this process; report its rate.

Run as `python -m miad.gpucheck.render PARAMS RENDERS DEVICE_TYPE OUT_JSON` (a fresh process per backend:
Cycles picks its device once per process).
"""

from __future__ import annotations

import sys
from pathlib import Path

from miad.atomic import write_json_atomic
from miad.config import load_params

SCENARIO = "witness_mark"  # a day scene with every factor (UV UB US): the costliest kind to render


def render_with(params_path: Path, renders: Path, device_type: str) -> dict[str, float]:
    """Render SCENARIO's main dataset under `renders` with Cycles on `device_type` only."""
    from miad.numeric_env import pin

    params = load_params(params_path)
    pin(params.active.numeric.threads)
    from miad.render import bproc
    from miad.render.shard import render_dataset

    bproc.GPU_DEVICE_TYPES = [device_type]  # the one backend to try; init_scene fails if Cycles lacks it
    report = render_dataset(params, "main", SCENARIO, renders, progress=False)
    images = report.rendered_images
    return {
        "device_type": device_type,
        "images": images,
        "wall_seconds": report.wall_seconds,
        "cycles_seconds": report.cycles_seconds,
        "images_per_second": images / report.wall_seconds if report.wall_seconds else 0.0,
    }


if __name__ == "__main__":
    params_file, renders_dir, backend, out = sys.argv[1:5]
    write_json_atomic(Path(out), render_with(Path(params_file), Path(renders_dir), backend))
