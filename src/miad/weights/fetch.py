"""Download a checkpoint with its checksum checked before anything is kept."""

from __future__ import annotations

import os
import re
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from miad.errors import MiadError
from miad.hashing import file_sha256

CHUNK = 1 << 20  # bytes per read while downloading
TIMEOUT_S = 60  # per socket operation
SHA256_PATTERN = re.compile(r"[0-9a-f]{8,64}")


class WeightsError(MiadError):
    """A checkpoint could not be fetched, failed its checksum, or does not fit its architecture."""


def check_sha256_spec(sha256: str) -> str:
    """A full sha256 or a prefix of at least 8 hex digits (the publisher's), lower-cased."""
    spec = sha256.lower()
    if not SHA256_PATTERN.fullmatch(spec):
        raise WeightsError(f"sha256 {sha256!r}: expected 8 to 64 hex digits (a full sha256 or its published prefix)")
    return spec


def download(url: str, directory: Path, sha256: str, suffix: str = ".pth") -> tuple[Path, str]:
    """Download `url` into a new file in `directory` and return (its path, its full sha256).

    The file is deleted and WeightsError raised when the sha256 does not start with `sha256`.
    """
    expected = check_sha256_spec(sha256)
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".download-", suffix=suffix, dir=directory)
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            while block := response.read(CHUNK):
                out.write(block)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        path.unlink(missing_ok=True)
        raise WeightsError(
            f"{url}: cannot download ({exc}); machines without internet get the weights with `dvc pull` "
            "once someone has fetched and pushed them (docs/remote.md, 'Paper backbone weights')"
        ) from exc
    actual = file_sha256(path)
    if not actual.startswith(expected):
        path.unlink(missing_ok=True)
        raise WeightsError(f"{url}: sha256 {actual} does not match the pinned {expected}; nothing was kept")
    return path, actual
