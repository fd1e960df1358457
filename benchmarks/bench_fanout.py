"""Fan-out, measured in one run: the render rate with 2 local workers against 1, and the pipeline slice with
`miad repro --jobs 2` against plain `dvc repro`, with where each stage's time goes.

Render: one smoke-profile dataset (witness_mark, 128 px, shards of 20) rendered in one process, then again as
shard tasks on 2 local workers (threads split: Cycles' thread count changes no bit). Pipeline: the smallest slice
of the pipeline (tests/pipeline_slice: one render, two trainings, two evaluations, on the same tiny params) run by
`dvc repro` in one fresh copy and by `miad repro --jobs 2` in another. Per stage: the process wall time (launcher),
the time inside the `miad` command (its own timing log), and the import of torch, timm and the methods that every
train/evaluate process pays first (measured alone). Absolute times drift between machines and runs; compare the
ratios. Writes one JSON file. The full smoke pipeline (201 stages, about 45 min on 2 cores): run
`miad repro --jobs 2` and `dvc repro` yourself (see docs/cluster.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from tests.pipeline_slice import TARGETS, prepare_slice  # noqa: E402

from bench_pipeline import run as timed  # noqa: E402  (this folder is on sys.path: the script's own)
from miad.atomic import write_json_atomic  # noqa: E402

IMPORT_PROBE = "import torch, timm, miad.methods, miad.stages.train, miad.stages.evaluate"


def bench_render(repo: Path, env: dict[str, str], scenario: str) -> dict:
    """Images per second with 1 process and with 2 local workers, same params, same run."""
    params = yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))
    smoke = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))["smoke"]["render"]
    params["smoke"]["render"].update({k: smoke[k] for k in ("resolution", "samples", "shard_size", "n_train")})
    params["smoke"]["render"].update(n_test_good=smoke["n_test_good"], n_test_defective=smoke["n_test_defective"])
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    images = smoke["n_train"] + smoke["n_test_good"] + smoke["n_test_defective"]
    base = ["miad", "render", "--scenario", scenario, "--no-progress"]
    result = {"scenario": scenario, "images": images, "resolution": smoke["resolution"]}
    for workers in (1, 2):
        seconds = timed([*base, "--renders", f"bench-w{workers}", "--workers", str(workers)], repo, env)
        result[f"workers_{workers}"] = {"seconds": seconds, "images_per_second": images / seconds}
    result["speedup_2_over_1"] = result["workers_1"]["seconds"] / result["workers_2"]["seconds"]
    return result


def bench_pipeline(root: Path, env: dict[str, str]) -> dict:
    """The slice by plain `dvc repro` and by `miad repro --jobs 2`, each in a fresh copy, same params."""
    out: dict = {"targets": list(TARGETS)}
    for name, cmd in (("dvc_repro", ["dvc", "repro", *TARGETS]), ("miad_repro_jobs2", None)):
        repo = prepare_slice(root / name)
        timings = root / f"{name}.jsonl"
        run_env = {**env, "MIAD_TIMINGS": str(timings)}
        stats = root / f"{name}-launch.json"
        cmd = cmd or ["miad", "repro", "--jobs", "2", "--stats-json", str(stats), *TARGETS]
        total = timed(cmd, repo, run_env)
        rows = [json.loads(line) for line in timings.read_text(encoding="utf-8").splitlines()]
        rows = [r for r in rows if r["command"] != "repro"]  # the launcher logs itself too
        inside = sum(r["seconds"] for r in rows)
        out[name] = {"wall_seconds": total, "inside_miad_seconds": inside, "outside_seconds": total - inside}
        if stats.exists():
            launch = json.loads(stats.read_text(encoding="utf-8"))
            out[name].update(
                stage_process_seconds=launch["seconds"],
                dvc_record_seconds=launch["record_seconds"],
                dvc_plan_seconds=launch["plan_seconds"],
            )
        out[name]["inside_miad_by_stage"] = {" ".join(r["argv"][:3]): r["seconds"] for r in rows}
    out["speedup"] = out["dvc_repro"]["wall_seconds"] / out["miad_repro_jobs2"]["wall_seconds"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="results/bench/fanout.json", help="JSON file to write")
    parser.add_argument("--scenario", default="witness_mark", help="scenario rendered for the render rate")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="miad-bench-fanout-"))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    try:
        imports = [timed([sys.executable, "-c", IMPORT_PROBE], REPO, env) for _ in range(3)]
        result = {
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
            "import_torch_timm_methods_seconds": min(imports),
            "render": bench_render(prepare_slice(root / "render"), env, args.scenario),
            "pipeline_slice": bench_pipeline(root, env),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    write_json_atomic(Path(args.out), result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
