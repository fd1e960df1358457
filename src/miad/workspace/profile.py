"""Show or switch the active profile of a params file, keeping every other byte of it (comments included)."""

from __future__ import annotations

import re
from pathlib import Path

from miad.config import ConfigError, load_params

PROFILE_LINE = re.compile(r"^profile:\s*(\S+)(.*)$", re.MULTILINE)


def _profile_line(path: Path, text: str) -> re.Match[str]:
    match = PROFILE_LINE.search(text)
    if match is None:
        raise ConfigError(f"{path}: no top-level `profile:` line")
    return match


def active_profile(path: Path) -> str:
    """The profile named on the params file's top-level `profile:` line."""
    return _profile_line(path, path.read_text(encoding="utf-8")).group(1)


def switch_profile(path: Path, name: str) -> None:
    """Rewrite only the `profile:` line; validate the file with the new profile before writing it."""
    text = path.read_text(encoding="utf-8")
    _profile_line(path, text)
    updated = PROFILE_LINE.sub(lambda m: f"profile: {name}{m.group(2)}", text, count=1)
    load_params(path, profile=name)
    path.write_text(updated, encoding="utf-8")
