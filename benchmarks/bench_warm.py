"""Warm workers, measured in one run: what a train/evaluate stage pays before its command starts, cold
(`LocalExecutor`: a new `miad` process imports numpy, OpenCV, torch, timm and the methods) against warm
(`miad.launcher.warm.WarmExecutor`: forked from a server that imported them once).

Start-up: `miad train` in a folder without renders, which imports everything a training imports and then stops at
the missing manifest, repeated; its wall time is the start-up overhead alone. Stages: the slice's two trainings and
two evaluations (tests/pipeline_slice, rendered once by `dvc repro`), run one at a time cold in one copy and warm in
another, with their outputs compared byte for byte. Absolute times drift between machines and runs (2 shared cores
here); compare the ratios. Writes one JSON file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from tests.pipeline_slice import BIN, METHODS, SCENARIO, TARGETS, prepare_slice, run  # noqa: E402

from miad.executors.base import Executor, Task  # noqa: E402
from miad.executors.local import LocalExecutor  # noqa: E402
from miad.launcher.warm import WarmExecutor, WarmJob  # noqa: E402

SHELL = ("/bin/bash", "--noprofile", "--norc", "-c")  # as DVC builds a stage's command with SHELL=bash
NOOP = "miad train --method ae --scenario witness_mark --out m"  # every import, then "manifest is missing"


def timed(executor: Executor, task: Task) -> tuple[float, bool]:
    """Wall seconds from submit to the command's end (polled every 10 ms), and whether it exited 0."""
    start = time.perf_counter()
    job = executor.submit(task)
    while not job.done():
        time.sleep(0.01)
    return time.perf_counter() - start, job.outcome().ok


def startup(executor: Executor, folder: Path, repeats: int) -> list[float]:
    seconds = []
    for i in range(repeats):
        wall, ok = timed(executor, Task(f"noop{i}", (*SHELL, NOOP), folder, {"DVC_STAGE": f"noop{i}"}))
        assert not ok, "the no-op training found renders: it should stop after its imports"
        seconds.append(round(wall, 3))
    return seconds


def stages(executor: Executor, repo: Path, commands: dict[str, str]) -> dict[str, float]:
    seconds = {}
    for kind in ("train", "evaluate"):
        for method in METHODS:
            name = f"{kind}@{method}-{SCENARIO}"
            wall, ok = timed(executor, Task(name, (*SHELL, commands[name]), repo, {"DVC_STAGE": name}))
            assert ok, name
            seconds[name] = round(wall, 3)
    return seconds


def outputs(repo: Path) -> dict[str, bytes]:
    paths = [*repo.glob("models/**/*"), *repo.glob("results/**/*")]
    keep = [p for p in paths if p.is_file() and "provenance" not in p.name and p.name != ".gitignore"]
    return {p.relative_to(repo).as_posix(): p.read_bytes() for p in sorted(keep)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench" / "warm.json")
    parser.add_argument("--repeats", type=int, default=5, help="start-up measurements per side")
    options = parser.parse_args()
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    with tempfile.TemporaryDirectory(prefix="miad-bench-warm-") as scratch:
        base = prepare_slice(Path(scratch) / "slice")
        run(["dvc", "repro", *TARGETS], base)  # renders, and the reference outputs
        lock = yaml.safe_load((base / "dvc.lock").read_text(encoding="utf-8"))
        commands = {name: entry["cmd"] for name, entry in lock["stages"].items()}
        noop = Path(scratch) / "noop"
        noop.mkdir()
        shutil.copy(base / "params.yaml", noop / "params.yaml")
        copies = {}
        for side in ("cold", "warm"):
            copies[side] = Path(scratch) / side
            shutil.copytree(base, copies[side], ignore=shutil.ignore_patterns("models", "results"))

        cold = LocalExecutor(Path(scratch) / "logs-cold")
        cold_startup = startup(cold, noop, options.repeats)
        cold_stages = stages(cold, copies["cold"], commands)
        with WarmExecutor(noop, log_dir=Path(scratch) / "logs-warm") as warm:
            start = time.perf_counter()
            warm.start({"DVC_STAGE": "server"})
            ready = warm.wait_ready()
            server_seconds = round(time.perf_counter() - start, 3)
            warm_startup = startup(warm, noop, options.repeats)
            warm_stages = stages(warm, copies["warm"], commands)
            warm_jobs = sum(isinstance(job, WarmJob) and job.warm for job in warm._jobs.values())
        same = outputs(copies["cold"]) == outputs(copies["warm"]) == outputs(base)

    cold_median, warm_median = statistics.median(cold_startup), statistics.median(warm_startup)
    result = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        "startup_seconds": {"cold": cold_startup, "warm": warm_startup},
        "startup_median_seconds": {"cold": cold_median, "warm": warm_median},
        "startup_ratio_cold_over_warm": round(cold_median / warm_median, 1),
        "server_start_seconds": server_seconds,  # paid once per launch, before the first warm stage
        "server_threads_at_fork": ready["threads"],
        "stage_seconds": {"cold": cold_stages, "warm": warm_stages},
        "stage_total_seconds": {
            "cold": round(sum(cold_stages.values()), 3),
            "warm": round(sum(warm_stages.values()), 3),
        },
        "stage_ratio_cold_over_warm": round(sum(cold_stages.values()) / sum(warm_stages.values()), 2),
        "saved_per_stage_seconds": round((sum(cold_stages.values()) - sum(warm_stages.values())) / len(cold_stages), 3),
        "warm_jobs": warm_jobs,  # of the no-op and real stage tasks, how many ran forked (all of them)
        "outputs_identical": same,
    }
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
