"""Finding the project folder from anywhere inside it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

PROJECT_MARKERS = ("params.yaml", "dvc.yaml")  # files only a MIAD project's root holds


def project_root(start: Path, markers: Sequence[str | Path] = PROJECT_MARKERS) -> Path:
    """The nearest folder at or above `start` (resolved) holding every file in `markers`; FileNotFoundError if none."""
    start = Path(start).resolve()
    for folder in (start, *start.parents):
        if all((folder / marker).is_file() for marker in markers):
            return folder
    names = " and ".join(str(m) for m in markers)
    raise FileNotFoundError(f"{start}: not inside a MIAD project (no {names} found above it)")
