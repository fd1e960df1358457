"""TEMPORARY (replaced by the house branch's version at merge)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml


def dvc_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "dvc", *args]


def write_meta(dvc_file: Path, meta: dict[str, Any]) -> None:
    data = yaml.safe_load(dvc_file.read_text(encoding="utf-8")) or {}
    data["meta"] = meta
    dvc_file.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
