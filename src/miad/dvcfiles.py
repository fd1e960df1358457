"""DVC from miad: the `dvc` command line through this interpreter, and the `meta:` block of `.dvc` files."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from miad.atomic import write_text_atomic


def dvc_command(*args: str) -> list[str]:
    """`dvc ARGS` through the interpreter running miad, so an unactivated `.venv/bin/miad` finds DVC."""
    return [sys.executable, "-m", "dvc", *args]


def _without_meta(text: str) -> str:
    """`.dvc` file text without its top-level `meta:` block (the key and every indented or list line under it)."""
    kept, in_meta = [], False
    for line in text.splitlines(keepends=True):
        if line.startswith("meta:"):
            in_meta = True
        elif in_meta and not line.startswith((" ", "-", "\n")):
            in_meta = False
        if not in_meta:
            kept.append(line)
    return "".join(kept)


def write_meta(dvc_file: Path, meta: Mapping[str, Any]) -> None:
    """Set the `meta:` block of `dvc_file` (DVC keeps it and reads nothing in it) to `meta`, written as YAML at the
    end; DVC's own lines stay as they are."""
    rest = _without_meta(dvc_file.read_text(encoding="utf-8")).rstrip("\n")
    block = yaml.safe_dump({"meta": dict(meta)}, sort_keys=False)
    write_text_atomic(dvc_file, f"{rest}\n{block}" if rest else block)
