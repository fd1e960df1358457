"""A scratch copy of the project: its sources without pipeline outputs, in a folder outside the workspace."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from miad.rehearsal import RehearsalError

SKIPPED_NAMES = {".venv", ".git", "__pycache__", ".pytest_cache", ".ruff_cache"}
SKIPPED_AT_ROOT = {"renders", "models", "results", "data", "dvc.lock", "weights", "imports"}  # outputs, big inputs
KEPT_DVC = {"config", ".gitignore"}  # of .dvc/: settings, never the cache or temp files
# Folders the report stage depends on. A clone has them (DVC's .gitignore files live there), but an empty one, e.g.
# results/runs_size when Table 7 studies no scenario, does not exist in a copy without outputs, and DVC stops on a
# missing dependency.
REPORT_INPUTS = ("results/runs", "results/runs_size", "results/maps")


def scratch_folder(project: Path, requested: Path | None) -> Path:
    """`requested` (must be new or empty, outside `project`) or a fresh temporary folder."""
    if requested is None:
        return Path(tempfile.mkdtemp(prefix="miad-rehearsal-"))
    target = requested.resolve()
    if target == project or project in target.parents:
        raise RehearsalError(f"{requested}: the rehearsal must run outside the project folder {project}")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise RehearsalError(f"{requested}: exists and is not an empty folder")
    target.mkdir(parents=True, exist_ok=True)
    return target


def copy_sources(project: Path, target: Path, skipped_at_root: set[str] = SKIPPED_AT_ROOT) -> Path:
    """Copy `project` into `target` without venv, git, caches, DVC's cache and temp files, or `skipped_at_root`."""

    def ignore(directory: str, names: list[str]) -> set[str]:
        skip = SKIPPED_NAMES | {n for n in names if n.endswith(".egg-info")}
        if Path(directory) == project:
            skip |= skipped_at_root
        if Path(directory) == project / ".dvc":
            skip |= set(names) - KEPT_DVC
        return skip & set(names)

    shutil.copytree(project, target, ignore=ignore, dirs_exist_ok=True)
    return target


def copy_project(project: Path, target: Path) -> Path:
    """Copy the sources (no venv, git, outputs, DVC cache) into `target` and make it a fresh git repository."""
    copy_sources(project, target)
    (target / "imports").mkdir(exist_ok=True)
    readme = project / "imports" / "README.md"
    if readme.is_file():  # the import stage depends on the folder; it holds only its README when rendering
        shutil.copy2(readme, target / "imports" / "README.md")
    for folder in REPORT_INPUTS:
        (target / folder).mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q"], cwd=target, check=True)
    return target
