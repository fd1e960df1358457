"""Per-stage wall time of the smoke pipeline, the render rate and Cycles' share of it.

Runs, in a fresh copy of the project, the commands `dvc repro` runs (assets, then each stage's
`miad` command, timed one by one), then `dvc commit`; `dvc status` must then find the pipeline up
to date, which proves the timed commands are the pipeline's. Writes one JSON file. Absolute times drift between machines and runs; compare ratios.
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
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from miad.atomic import write_json_atomic  # noqa: E402
from miad.config import load_params  # noqa: E402

COPY_IGNORE = shutil.ignore_patterns(".venv", ".git", "renders", "models", "results", "__pycache__", "*.egg-info",
                                     ".pytest_cache", ".ruff_cache", "tmp", "cache")


def timed(cmd: list[str], cwd: Path) -> float:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return time.perf_counter() - start


def bench(work: Path, profile: str) -> dict:
    shutil.copytree(REPO, work, ignore=COPY_IGNORE)
    subprocess.run(["git", "init", "-q"], cwd=work, check=True)
    params = load_params(work / "params.yaml", profile=profile)
    if profile != params.profile:
        timed(["miad", "profile", profile], work)
    stages: dict[str, float] = {"assets": timed(["miad", "assets", "restore"], work)}
    render = {}
    for scenario in params.scenarios:
        stats = work / f"render-{scenario}.json"
        stages[f"render@{scenario}"] = timed(["miad", "render", "--scenario", scenario, "--no-progress",
                                              "--stats-json", str(stats)], work)
        render[scenario] = json.loads(stats.read_text())
        render[scenario]["images_per_second"] = render[scenario]["rendered_images"] / stages[f"render@{scenario}"]
        render[scenario]["cycles_share_of_stage"] = render[scenario]["cycles_seconds"] / stages[f"render@{scenario}"]
    for method in params.methods:
        for scenario in params.scenarios:
            model = f"models/{method}/main/{scenario}"
            stages[f"train@{method}-{scenario}"] = timed(
                ["miad", "train", "--method", method, "--scenario", scenario, "--out", model], work)
            stages[f"evaluate@{method}-{scenario}"] = timed(
                ["miad", "evaluate", "--method", method, "--scenario", scenario, "--model", model,
                 "--out", f"results/runs/{method}/main/{scenario}.json"], work)
    stages["report"] = timed(["miad", "report"], work)
    # Record what ran in dvc.lock (hashing deps and outs); then the pipeline must be up to date.
    stages["dvc_commit"] = timed(["dvc", "commit", "-f", "-q"], work)
    status = subprocess.run(["dvc", "status"], cwd=work, capture_output=True, text=True, check=True).stdout
    if "up to date" not in status:
        raise SystemExit(f"the timed commands did not match dvc.yaml; dvc status says:\n{status}")
    return {
        "profile": profile,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "stage_seconds": stages,
        "total_seconds": sum(stages.values()),
        "render": render,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="results/bench/pipeline.json", help="JSON file to write")
    parser.add_argument("--profile", default="smoke", choices=["smoke", "paper"], help="profile to run")
    parser.add_argument("--keep", action="store_true", help="keep the working copy (its path is printed)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="miad-bench-")) / "repo"
    try:
        result = bench(work, args.profile)
    finally:
        if not args.keep:
            shutil.rmtree(work.parent, ignore_errors=True)
    write_json_atomic(Path(args.out), result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
