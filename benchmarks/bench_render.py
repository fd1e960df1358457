"""Render rate per scenario, the share of wall time outside Cycles, and the one-process-per-image baseline.

For every scenario and resolution (the smoke profile's and 512 px by default) one process renders a small dataset
with the shard renderer (scene built once per shard task, per image only poses, materials and defects change) and
reports images/s, the time inside Cycles' render call (`bpy`'s render through BlenderProc, including its EXR/PNG
round trip) and the rest (start-up, scene building, sampling, PNG encoding, shard writing), as a share of the
whole process, of the render loop (scene build included) and per image once the scene is built. The baseline launches a
fresh Python process per image, as a naive script would (import bpy, build the scene, render one image), measured
in the same run. Absolute times drift; compare the ratios. Writes one JSON file.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from miad.atomic import write_json_atomic  # noqa: E402
from miad.catalog import SCENARIOS  # noqa: E402

BASELINE_SCRIPT = """
import sys, tempfile
from pathlib import Path
from miad.config import load_params
from miad.render.scene import ScenarioRenderer
from miad.render.shard import plan_split
params = load_params(sys.argv[1])
scenario, index = sys.argv[2], int(sys.argv[3])
plan = plan_split(params, "main", scenario, "test")[index]
from miad.catalog import applied_factors
renderer = ScenarioRenderer(scenario, applied_factors("main", scenario), params.active.render, Path(tempfile.mkdtemp()))
renderer.render(plan)
"""


def write_params(directory: Path, resolution: int, images: int) -> Path:
    data = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    render = data["smoke"]["render"]
    half = max(images // 4, 1)
    render.update(resolution=resolution, n_train=images - 2 * half, n_test_good=half, n_test_defective=half)
    render.update(shard_size=images, assets_dir=str(REPO / "data"))
    data["profile"] = "smoke"
    path = directory / f"params_{resolution}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def in_process(params: Path, scenario: str, renders: Path) -> dict:
    """One `miad render` process for the whole dataset; its own timing report."""
    stats = renders / f"{scenario}.json"
    cmd = [sys.executable, "-m", "miad.cli", "render", "--params", str(params), "--scenario", scenario,
           "--renders", str(renders), "--no-progress", "--stats-json", str(stats)]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    wall = time.perf_counter() - start  # includes interpreter start and imports
    report = json.loads(stats.read_text(encoding="utf-8"))
    images = report["rendered_images"]
    return {
        "images": images,
        "process_wall_s": wall,
        "images_per_s": images / wall,
        "cycles_s": report["cycles_seconds"],
        "outside_cycles_share": 1.0 - report["cycles_seconds"] / wall,  # whole process, interpreter start included
        "render_wall_s": report["wall_seconds"],  # render_dataset: scene build, all images, shard writing
        "outside_cycles_share_render": 1.0 - report["cycles_seconds"] / report["wall_seconds"],
        # steady state, once the scene is built (a shard of the paper profile holds 250 images per scene build)
        "outside_cycles_share_per_image": 1.0
        - report["cycles_seconds"] / (report["wall_seconds"] - report["setup_seconds"]),
        "setup_s": report["setup_seconds"],
    }


def per_process(params: Path, scenario: str, count: int) -> dict:
    """The baseline: a new process per image (bpy import and scene build every time)."""
    start = time.perf_counter()
    for index in range(count):
        subprocess.run([sys.executable, "-c", BASELINE_SCRIPT, str(params), scenario, str(index)], check=True,
                       capture_output=True)  # fmt: skip
    wall = time.perf_counter() - start
    return {"images": count, "wall_s": wall, "images_per_s": count / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="results/bench/render.json")
    parser.add_argument("--resolutions", type=int, nargs="+", default=[128, 512], help="px (default: smoke and 512)")
    parser.add_argument("--images", type=int, nargs="+", default=[24, 8], help="images per scenario, per resolution")
    parser.add_argument("--baseline-images", type=int, default=3, help="images rendered one process each")
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS))
    args = parser.parse_args()
    if len(args.images) != len(args.resolutions):
        parser.error("give one --images count per resolution")
    rows = []
    with tempfile.TemporaryDirectory(prefix="miad-bench-render-") as temp:
        for resolution, images in zip(args.resolutions, args.images, strict=True):
            params = write_params(Path(temp), resolution, images)
            for scenario in args.scenarios:
                shared = in_process(params, scenario, Path(temp) / f"renders_{resolution}")
                baseline = per_process(params, scenario, args.baseline_images)
                row = {"scenario": scenario, "resolution": resolution, "in_process": shared, "per_process": baseline,
                       "speedup_vs_per_process": shared["images_per_s"] / baseline["images_per_s"]}  # fmt: skip
                rows.append(row)
                print(
                    f"{scenario:22s} {resolution:4d}px  {shared['images_per_s']:6.2f} img/s  outside Cycles "
                    f"{100 * shared['outside_cycles_share']:5.1f}% (process) "
                    f"{100 * shared['outside_cycles_share_render']:5.1f}% (render loop) "
                    f"{100 * shared['outside_cycles_share_per_image']:5.1f}% (per image)  "
                    f"per-process {baseline['images_per_s']:5.2f} img/s"
                    f"  x{row['speedup_vs_per_process']:.1f}",
                    flush=True,
                )
    result = {"machine": platform.platform(), "python": platform.python_version(), "rows": rows}
    write_json_atomic(Path(args.out), result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
