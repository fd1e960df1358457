"""The smallest pipeline slice that crosses every kind of stage, for tests that run it another way.

One scenario rendered tiny, then two methods trained and evaluated on it: a render stage (Blender),
train stages and evaluate stages (torch). Tests that run the slice another way (in containers, through
Slurm) compare their outputs byte for byte with `native_slice`, the slice run once per test session
by plain `dvc repro` in a scratch copy of the project.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from miad.numeric_env import PROVENANCE_NAME
from tests.conftest import tiny_params_dict
from tests.project_copy import copy_project

BIN = Path(sys.executable).parent
SCENARIO = "witness_mark"
METHODS = ("patchcore", "ae")
TARGETS = tuple(f"evaluate@{method}-{SCENARIO}" for method in METHODS)  # with their train and render stages


def run(cmd: list[str], cwd: Path, extra_env: dict[str, str] | None = None) -> str:
    """Run `cmd` in `cwd` with the venv's bin/ first on PATH; fail the test with its output if it fails."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **(extra_env or {})}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def slice_params() -> dict:
    """The smoke profile shrunk to a few 64 px images, one scenario, two epochs."""
    params = tiny_params_dict(resolution=64, samples=4, n_train=6, n_test_good=3, n_test_defective=3, shard_size=3)
    for config in params["smoke"]["train"].values():
        if isinstance(config, dict):
            config["image_size"] = 64
            config.update({"epochs": 2} if "epochs" in config else {})
    params["scenarios"] = [SCENARIO]
    params["table7"].update(scenarios=[SCENARIO], fractions=[0.5], uncapped_fractions=[0.5])
    params["ablation"].update(methods=["patchcore"], scenarios=[SCENARIO], variants=["baseline"])
    return params


def prepare_slice(target: Path) -> Path:
    """A scratch copy of the project at `target`: a git repository with the slice's params and restored assets."""
    repo = copy_project(target)
    run(["git", "init", "-q"], repo)
    (repo / "params.yaml").write_text(yaml.safe_dump(slice_params(), sort_keys=False), encoding="utf-8")
    run(["miad", "assets", "restore"], repo)
    return repo


def canonical_lock(path: Path) -> bytes:
    """dvc.lock with its stages sorted by name. `dvc repro TARGETS` appends new entries in the order its plan walks
    them, which follows Python's per-process string hash seed (networkx walks sets): two plain runs of the same
    targets can order the entries differently, while every entry's bytes are the same."""
    lock = yaml.safe_load(path.read_text(encoding="utf-8"))
    lock["stages"] = dict(sorted(lock["stages"].items()))
    return yaml.safe_dump(lock, sort_keys=False).encode()


def slice_outputs(repo: Path) -> dict[str, bytes]:
    """Every file the slice writes (renders, models, runs; dvc.lock in canonical order), without the provenance
    sidecars; .gitignore files as sorted lines (DVC appends one as it records each stage)."""
    paths = [*repo.glob("renders/**/*"), *repo.glob("models/**/*"), *repo.glob("results/runs/**/*")]
    files = {
        p.relative_to(repo).as_posix(): p.read_bytes()
        for p in sorted(paths)
        if p.is_file() and not p.name.endswith(PROVENANCE_NAME)
    }
    for name, content in files.items():
        if name.endswith(".gitignore"):
            files[name] = b"".join(sorted(content.splitlines(keepends=True)))
    return {"dvc.lock": canonical_lock(repo / "dvc.lock"), **files}
