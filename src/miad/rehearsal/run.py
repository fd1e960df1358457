"""Run the rehearsal: scratch copy, shrunk paper params, random paper backbones, assets, `dvc repro`, checks."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from miad.dvcfiles import dvc_command
from miad.rehearsal.params import Shrink, rehearsal_params
from miad.rehearsal.scratch import copy_project, scratch_folder

TABLES = ("table3", "table4", "table5", "table6", "table7")
TABLE_SUFFIXES = ("md", "csv", "tex")
CHECKED_METRIC = "image_auroc"
UNCAPPED = "patchcore_uncapped"


@dataclass(frozen=True)
class Outcome:
    """Where the rehearsal ran and what it found."""

    folder: Path
    returncode: int  # of the first failing step, 0 when every step passed
    failed_step: str | None
    missing: list[str]  # expected table files and metrics cells that are absent or not finite
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.missing


def miad_command(*args: str) -> list[str]:
    """The `miad` program (numeric environment pinned) through this interpreter."""
    return [sys.executable, "-m", "miad.cli", *args]


def expected_cells(params: dict[str, Any]) -> list[tuple[str, str]]:
    """(metrics.json key, method) of every cell the shrunk params should fill."""
    cells = [(f"main/{s}", m) for s in params["scenarios"] for m in [*params["methods"], *params["unified_methods"]]]
    ablation = params["ablation"]
    cells += [(f"{v}/{s}", m) for v in ablation["variants"] for s in ablation["scenarios"] for m in ablation["methods"]]
    study = params["table7"]
    for scenario in study["scenarios"]:
        cells += [(f"table7/{f:g}/main/{scenario}", m) for f in [*study["fractions"], 1.0] for m in study["methods"]]
        if "patchcore" in study["methods"]:
            cells += [(f"table7/{f:g}/main/{scenario}", UNCAPPED) for f in study["uncapped_fractions"]]
    return cells


def missing_outputs(folder: Path, params: dict[str, Any]) -> list[str]:
    """Table files and metric cells the run should have written but did not (or wrote as NaN)."""
    missing = [
        f"results/tables/{t}.{x}"
        for t in TABLES
        for x in TABLE_SUFFIXES
        if not (folder / "results" / "tables" / f"{t}.{x}").is_file()
    ]
    metrics_path = folder / "results" / "metrics.json"
    if not metrics_path.is_file():
        return [*missing, "results/metrics.json"]
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    for key, method in expected_cells(params):
        value = metrics.get(key, {}).get(method, {}).get(CHECKED_METRIC)
        if not isinstance(value, int | float) or not math.isfinite(value):
            missing.append(f"metrics.json[{key}][{method}].{CHECKED_METRIC} = {value!r}")
    return missing


def _step(name: str, command: list[str], folder: Path, log: Path) -> int:
    """Run one step in `folder`, its output shown and appended to `log`; its exit status."""
    print(f"rehearsal: {name}: {' '.join(command)}", file=sys.stderr, flush=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    with log.open("a", encoding="utf-8") as handle:
        handle.write(f"\n$ {' '.join(command)}\n")
        handle.flush()
        proc = subprocess.Popen(
            command, cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace")
            handle.write(line)
            sys.stderr.write(line)
        return proc.wait()


def prepare(project: Path, folder: Path | None, shrink: Shrink, seed_weights: bool = True) -> tuple[Path, dict]:
    """The scratch copy with the shrunk params and the random paper backbones written; nothing run yet."""
    from miad.config import load_params
    from miad.rehearsal.weights import write_paper_backbones

    target = copy_project(project, scratch_folder(project, folder))
    data = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    params = rehearsal_params(data, shrink)
    (target / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    load_params(target / "params.yaml")  # validate before any work
    if seed_weights:
        for path in write_paper_backbones(target, int(params["seed"])):
            print(f"rehearsal: random-initialised weights {path.relative_to(target)}", file=sys.stderr)
    return target, params


def rehearse(project: Path, folder: Path | None, shrink: Shrink) -> Outcome:
    """Prepare the scratch copy, run the pipeline in it, and check every expected table cell."""
    start = time.perf_counter()
    target, params = prepare(project, folder, shrink)
    log = target / "rehearsal.log"
    steps = {"assets": miad_command("assets", "restore"), "dvc repro": dvc_command("repro")}
    for name, command in steps.items():
        code = _step(name, command, target, log)
        if code != 0:
            return Outcome(target, code, name, missing_outputs(target, params), time.perf_counter() - start)
    return Outcome(target, 0, None, missing_outputs(target, params), time.perf_counter() - start)
