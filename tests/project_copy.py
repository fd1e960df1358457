"""Copy the project's sources to a scratch folder: for end-to-end tests and the pipeline benchmark."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def copy_project(target: Path) -> Path:
    """Copy the project's sources (no venv, no git, no pipeline outputs, no DVC cache) to `target`."""

    def ignore(directory: str, names: list[str]) -> set[str]:
        skip = {".venv", ".git", "__pycache__", ".pytest_cache", ".ruff_cache"}
        skip |= {n for n in names if n.endswith(".egg-info")}
        if Path(directory) == REPO:
            skip |= {"renders", "models", "results", "data", "dvc.lock"}
        if Path(directory) == REPO / ".dvc":
            skip |= {"tmp", "cache"}
        return skip & set(names)

    shutil.copytree(REPO, target, ignore=ignore)
    return target
