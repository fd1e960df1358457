"""Per-stage overhead of running the pipeline slice in the images (MIAD_RUNTIME=docker) against natively.

Runs tests.pipeline_slice twice in one process, natively and with every stage in its image (the images
docker/images.lock names: `make images` first), with $MIAD_TIMINGS set so that each `miad` stage logs its
wall time on the host (for docker: the whole `docker run`, start-up included). Writes one JSON file with the
seconds per stage command in each runtime, their ratio, a bare container's start-up time, the image sizes,
and whether the outputs came out byte-identical. Without a Docker engine or the images, the JSON says so
(`"docker_available": false` or `"images_available": false`) and nothing is timed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from tests.pipeline_slice import TARGETS, prepare_slice, slice_outputs  # noqa: E402

from miad.atomic import write_json_atomic  # noqa: E402
from miad.config import ConfigError  # noqa: E402
from miad.runtime import engine, images  # noqa: E402

STARTUP_REPEATS = 3


def repro(repo: Path, runtime: str) -> tuple[float, dict[str, float]]:
    """(total seconds, seconds per stage command) of `dvc repro` of the slice in `repo` under `runtime`."""
    timings = repo.parent / f"timings-{runtime}.jsonl"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MIAD_TIMINGS": str(timings),
        "MIAD_RUNTIME": runtime,
    }
    start = time.perf_counter()
    proc = subprocess.run(["dvc", "repro", *TARGETS], cwd=repo, env=env, capture_output=True, text=True, check=False)
    total = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"dvc repro ({runtime}) failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    by_command: dict[str, float] = defaultdict(float)
    for line in timings.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        by_command[row["command"]] += row["seconds"]
    return total, dict(by_command)


def startup_seconds(image: str) -> float:
    """Median wall time of `docker run --rm IMAGE true`: what every containerised stage pays at least."""
    times = []
    for _ in range(STARTUP_REPEATS):
        start = time.perf_counter()
        subprocess.run([engine.client(), "run", "--rm", "--network", "none", image, "true"], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def images_present() -> tuple[dict[str, dict], str]:
    """({image: lock entry + size}, why not) for the images docker/images.lock names."""
    try:
        lock = images.read_lock(REPO)
    except ConfigError as exc:
        return {}, str(exc)
    found = {}
    for name, entry in lock.items():
        proc = subprocess.run(
            [engine.client(), "image", "inspect", "--format", "{{.Size}}", str(entry["id"])],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            return {}, f"image {name} ({entry['id']}) from {images.LOCK_PATH} is not in this engine: run `make images`"
        found[name] = {**entry, "size_bytes": int(proc.stdout.strip())}
    return found, ""


def measure(keep: bool) -> dict:
    ready, why = engine.available()
    if not ready:
        return {"docker_available": False, "reason": f"no Docker engine: {why}"}
    present, why = images_present()
    if not present:
        return {"docker_available": True, "images_available": False, "reason": why}
    top = Path(tempfile.mkdtemp(prefix="miad-bench-containers-"))
    try:
        native_repo, docker_repo = prepare_slice(top / "native" / "repo"), prepare_slice(top / "docker" / "repo")
        native_total, native = repro(native_repo, "native")
        docker_total, docker = repro(docker_repo, "docker")
        native_out, docker_out = slice_outputs(native_repo), slice_outputs(docker_repo)
        differing = sorted(n for n in native_out.keys() | docker_out.keys() if native_out.get(n) != docker_out.get(n))
    finally:
        if keep:
            print(f"kept {top}", file=sys.stderr)
        else:
            shutil.rmtree(top, ignore_errors=True)
    stages = {
        command: {
            "native_seconds": native[command],
            "docker_seconds": docker.get(command),
            "ratio": docker[command] / native[command] if command in docker and native[command] else None,
        }
        for command in sorted(native)
    }
    return {
        "docker_available": True,
        "images_available": True,
        "slice_targets": list(TARGETS),
        "stages": stages,
        "total": {"native_seconds": native_total, "docker_seconds": docker_total, "ratio": docker_total / native_total},
        "container_startup_seconds": {name: startup_seconds(str(entry["id"])) for name, entry in present.items()},
        "images": present,
        "outputs_byte_identical": not differing,
        "outputs_differing": differing,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="results/bench/containers.json", help="JSON file to write")
    parser.add_argument("--keep", action="store_true", help="keep the working copies (their path is printed)")
    args = parser.parse_args()
    result = {
        "benchmark": "containers",
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        **measure(args.keep),
    }
    write_json_atomic(Path(args.out), result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
