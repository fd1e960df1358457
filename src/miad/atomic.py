"""Atomic file writes: a temp file beside the target, then a rename, so no reader sees half a file."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: Path, *, suffix: str = ".tmp", mode: int | None = None, fsync: bool = False) -> Iterator[Path]:
    """Yield a fresh hidden temp path beside `path` for the caller to write; on success it replaces `path` in one
    rename, on failure it is deleted. The file gets `mode`, or what a plain open() would give (0o666 less the
    umask); `fsync` flushes it to disk before the rename. `suffix` keeps a format-by-extension writer happy."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    temp = Path(name)
    try:
        yield temp
        if fsync:
            with open(temp, "rb") as handle:
                os.fsync(handle.fileno())
        os.chmod(temp, 0o666 & ~_umask() if mode is None else mode)  # mkstemp makes 0o600
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with atomic_path(path) as temp:
        temp.write_bytes(data)


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, payload: Any) -> None:
    """JSON with sorted keys and a trailing newline: the same payload always gives the same bytes."""
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield a temp folder beside `target`; on success it replaces `target` in one rename.

    An existing `target` is moved aside first and deleted only after the swap, and put back if the
    swap fails, so readers see the old folder or the new one, never a half-written one.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    old: Path | None = None
    try:
        yield temp
        temp.chmod(0o777 & ~_umask())  # mkdtemp makes 0o700: give what a plain mkdir would
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.replace(target, old / target.name)
        os.replace(temp, target)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        if old is not None and not target.exists():
            os.replace(old / target.name, target)  # put the previous folder back
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
