"""The whole pipeline cold (`dvc repro`: one stage at a time, each a fresh Python) against `miad repro` (the launcher:
stages side by side, warm workers), in one run on one machine, with where each side's time goes.

Two fresh copies of the project (`--scope smoke`: the committed params, every stage; `--scope slice`: the test
slice's params, a few 64 px images of one scenario, minutes) run with $MIAD_TIMINGS set, so every `miad` command
logs the seconds of its own command and its process's age. Per side, summed over stages: start-up (process age
minus command: interpreter and parsing; a warm worker's process is a fork, so its age starts at the fork), command
(which includes the imports a handler does lazily: torch, timm, the methods; a warm worker has them preloaded, so
cold minus warm command time per stage kind is mostly those imports), and for the cold side the rest of the wall
(DVC's bookkeeping between stages). The launcher's own report adds its planning and DVC recording. Both copies'
outputs are compared byte for byte (dvc.lock as data), and at smoke scope the launcher's dvc.lock against the
committed one. Writes one JSON file; quote the ratio measured within one run, absolute times drift between
machines and runs.
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

from tests.pipeline_slice import slice_outputs, slice_params  # noqa: E402
from tests.project_copy import copy_project  # noqa: E402

from bench_pipeline import run  # noqa: E402  (this folder is sys.path[0] when a benchmark runs)
from miad.atomic import write_json_atomic  # noqa: E402


def prepare(target: Path, scope: str, env: dict[str, str]) -> Path:
    repo = copy_project(target)
    run(["git", "init", "-q"], repo, env)
    if scope == "slice":
        (repo / "params.yaml").write_text(yaml.safe_dump(slice_params(), sort_keys=False), encoding="utf-8")
    run(["miad", "assets", "restore"], repo, env)
    return repo


def lock_differences(ours: Path, theirs: Path) -> list[str]:
    """The stages whose dvc.lock entries differ (named before the scratch copies are deleted), with the outs that
    differ: what to look at when the copies' locks are not byte-identical."""
    a, b = (yaml.safe_load(path.read_text(encoding="utf-8"))["stages"] for path in (ours, theirs))
    found = []
    for name in sorted(a.keys() | b.keys()):
        if a.get(name) != b.get(name):
            outs = {o["path"]: o.get("md5") for o in (a.get(name) or {}).get("outs", [])}
            other = {o["path"]: o.get("md5") for o in (b.get(name) or {}).get("outs", [])}
            changed = sorted(k for k in outs.keys() | other.keys() if outs.get(k) != other.get(k))
            found.append(f"{name}: {', '.join(changed) or 'deps or params'}")
    return found


def stage_split(timings: Path, total: float) -> dict:
    """Stages timed, and the seconds of start-up, command and the rest of the wall, from $MIAD_TIMINGS rows."""
    rows = [json.loads(line) for line in timings.read_text().splitlines()] if timings.is_file() else []
    rows = [r for r in rows if r["command"] != "repro"]  # the launcher's own row: its wall is the total
    command = sum(r["seconds"] for r in rows)
    process = sum(r["process_seconds"] or r["seconds"] for r in rows)
    return {
        "total_seconds": total,
        "stages": len(rows),
        "command_seconds": command,
        "startup_seconds": process - command,
        "startup_per_stage_seconds": (process - command) / len(rows) if rows else 0.0,
        "rest_seconds": total - process,  # cold: DVC between stages; launcher: meaningless, stages overlap
        "by_command": {
            name: round(sum(r["seconds"] for r in rows if r["command"] == name), 1)
            for name in sorted({r["command"] for r in rows})
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="results/bench/launcher.json", help="JSON file to write")
    parser.add_argument("--scope", default="smoke", choices=["smoke", "slice"], help="whole pipeline or the slice")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="launcher: stages at once")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="miad-bench-launcher-"))
    base = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result: dict = {
        "scope": args.scope,
        "jobs": args.jobs,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
    }
    try:
        result["load_average_before"] = os.getloadavg()
        cold = prepare(scratch / "cold", args.scope, base)
        total = run(["dvc", "repro"], cold, {**base, "MIAD_TIMINGS": str(scratch / "cold.jsonl")})
        result["cold"] = {"how": "dvc repro", **stage_split(scratch / "cold.jsonl", total)}

        warm_env = {**base, "MIAD_TIMINGS": str(scratch / "warm.jsonl")}
        warm = prepare(scratch / "warm", args.scope, base)
        report = scratch / "launcher.json"
        launch = ["miad", "repro", "--no-pull", "--jobs", str(args.jobs), "--stats-json", str(report)]
        total = run(launch, warm, warm_env)
        launched = json.loads(report.read_text())
        result["launcher"] = {
            "how": " ".join(launch[:5]),
            **stage_split(scratch / "warm.jsonl", total),
            "stage_process_seconds": sum(launched["seconds"].values()),
            "record_seconds": launched["record_seconds"],
            "plan_seconds": launched["plan_seconds"],
        }
        result["ratio_cold_to_launcher"] = result["cold"]["total_seconds"] / total
        result["command_seconds_cold_minus_launcher"] = {
            name: round(seconds - result["launcher"]["by_command"].get(name, 0.0), 1)
            for name, seconds in result["cold"]["by_command"].items()
        }
        result["load_average_after"] = os.getloadavg()  # other work on the machine skews the ratio: check both
        ours, theirs = slice_outputs(warm), slice_outputs(cold)
        result["identical"] = ours == theirs
        result["differing"] = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))[:20]
        result["differing_stages"] = lock_differences(warm / "dvc.lock", cold / "dvc.lock")
        if args.scope == "smoke":  # every stage ran from scratch: its lock must be the committed one
            result["stages_differing_from_committed"] = lock_differences(warm / "dvc.lock", REPO / "dvc.lock")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    write_json_atomic(Path(args.out), result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
