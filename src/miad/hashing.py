"""Content digests (hex): sha256 for our own records, md5 where DVC's hash is what we compare with."""

from __future__ import annotations

import hashlib
from pathlib import Path

BLOCK = 1 << 20  # bytes read at a time: a file of any size hashes in constant memory


def bytes_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while block := handle.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    return _file_digest(path, "sha256")


def file_md5(path: Path) -> str:
    """DVC's own per-file hash."""
    return _file_digest(path, "md5")


def tree_sha256(folder: Path, pattern: str = "*") -> str:
    """sha256 over the bytes of every file matching `pattern` under `folder`, in sorted path order (names not
    included): two folders with the same files in the same order give the same digest."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).rglob(pattern)):
        if path.is_file():
            with open(path, "rb") as handle:
                while block := handle.read(BLOCK):
                    digest.update(block)
    return digest.hexdigest()
