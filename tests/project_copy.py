"""Copy the project's sources to a scratch folder: for end-to-end tests and the pipeline benchmark."""

from __future__ import annotations

from pathlib import Path

from miad.rehearsal.scratch import copy_sources

REPO = Path(__file__).resolve().parents[1]
OUTPUTS = {"renders", "models", "models_size", "results", "data", "dvc.lock"}  # outputs; weights/, imports/ stay


def copy_project(target: Path) -> Path:
    """Copy the project's sources (no venv, no git, no pipeline outputs, no DVC cache) to `target`."""
    return copy_sources(REPO, target, OUTPUTS)
