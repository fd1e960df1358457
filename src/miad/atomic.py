"""Atomic file writes: a temp file beside the target, then a rename, so no reader sees half a file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def temp_path_for(path: Path) -> Path:
    """A hidden temp name beside `path`, unique per process."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def write_bytes_atomic(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path_for(path)
    try:
        temp.write_bytes(data)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, payload: Any) -> None:
    """JSON with sorted keys and a trailing newline: the same payload always gives the same bytes."""
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")
