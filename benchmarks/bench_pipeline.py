"""Per-stage wall time of the smoke pipeline, the render rate and Cycles' share of it.

Runs `miad assets restore` and `dvc repro` in a fresh copy of the project with $MIAD_TIMINGS set,
so every `miad` command that DVC runs logs its own wall time (and the render stage its time inside
Cycles' render calls). Writes one JSON file. Absolute times drift between machines and runs;
compare ratios measured within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from tests.project_copy import copy_project  # noqa: E402

from miad.atomic import write_json_atomic  # noqa: E402


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def summarise(rows: list[dict]) -> dict:
    """Seconds per stage kind (render, train, evaluate, report...), and the render rate."""
    by_command: dict[str, float] = defaultdict(float)
    for row in rows:
        by_command[row["command"]] += row["seconds"]
    renders = [row for row in rows if row["command"] == "render"]
    images = sum(r["extra"]["rendered_images"] for r in renders)
    seconds = sum(r["seconds"] for r in renders)
    cycles = sum(r["extra"]["cycles_seconds"] for r in renders)
    return {
        "seconds_by_command": dict(by_command),
        "render": {
            "images": images,
            "seconds": seconds,
            "images_per_second": images / seconds if seconds else 0.0,
            "cycles_seconds": cycles,
            "cycles_share": cycles / seconds if seconds else 0.0,
            "renderer_setup_seconds": sum(r["extra"]["setup_seconds"] for r in renders),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="results/bench/pipeline.json", help="JSON file to write")
    parser.add_argument("--profile", default="smoke", choices=["smoke", "paper"], help="profile to run")
    parser.add_argument("--keep", action="store_true", help="keep the working copy (its path is printed)")
    args = parser.parse_args()
    work = copy_project(Path(tempfile.mkdtemp(prefix="miad-bench-")) / "repo")
    timings = work.parent / "timings.jsonl"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MIAD_TIMINGS": str(timings),
    }
    try:
        run(["git", "init", "-q"], work, env)
        run(["miad", "profile", args.profile], work, env)
        total = run(["miad", "assets", "restore"], work, env) + run(["dvc", "repro"], work, env)
        rows = [json.loads(line) for line in timings.read_text().splitlines()]
    finally:
        if args.keep:
            print(f"working copy kept at {work}", file=sys.stderr)
        else:
            shutil.rmtree(work.parent, ignore_errors=True)
    result = {
        "profile": args.profile,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "total_seconds": total,
        "dvc_overhead_seconds": total - sum(r["seconds"] for r in rows),
        **summarise(rows),
        "stages": [{"argv": r["argv"], "seconds": r["seconds"]} for r in rows],
    }
    write_json_atomic(Path(args.out), result)
    print(json.dumps({k: v for k, v in result.items() if k != "stages"}, indent=2))


if __name__ == "__main__":
    main()
