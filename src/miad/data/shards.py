"""The shard format: one zip archive of PNG images, PNG masks and an index.json.

A few hundred images per archive keeps DVC fast (it hashes files, not pixels). Archives are written
byte-deterministically (fixed member order, timestamps and PNG settings) and atomically (temp file,
then rename), so a rerun with the same params reproduces the same bytes and a killed render never
leaves a half-written shard under its final name.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from miad.atomic import atomic_path
from miad.errors import MiadError
from miad.hashing import bytes_sha256, file_sha256

SHARD_FORMAT = 1
INDEX_MEMBER = "index.json"
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time zip can store: no wall clock in the bytes
PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 3]


class ShardError(MiadError, ValueError):
    """A shard that is missing, truncated or does not match its recorded hashes."""


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of an (H, W, 3) RGB or (H, W) grey uint8 array."""
    if array.dtype != np.uint8 or array.ndim not in (2, 3):
        raise ValueError(f"expected a uint8 (H, W) or (H, W, 3) array, got {array.dtype} {array.shape}")
    pixels = cv2.cvtColor(array, cv2.COLOR_RGB2BGR) if array.ndim == 3 else array
    ok, buffer = cv2.imencode(".png", pixels, PNG_PARAMS)
    if not ok:  # pragma: no cover - OpenCV only fails on invalid arrays, checked above
        raise ValueError("PNG encoding failed")
    return buffer.tobytes()


def decode_png(data: bytes, *, color: bool) -> np.ndarray:
    """Inverse of `encode_png`: RGB (H, W, 3) when `color`, else grey (H, W)."""
    flag = cv2.IMREAD_COLOR if color else cv2.IMREAD_GRAYSCALE
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if pixels is None:
        raise ShardError("not a decodable PNG")
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB) if color else pixels


@dataclass(frozen=True)
class IndexEntry:
    """One image's row in a shard index (everything but the pixels)."""

    stem: str
    split: str
    label: int
    defect_type: str
    seed: int
    image_sha256: str
    mask_sha256: str
    record: Mapping[str, Any]  # camera pose, factor settings, defect details

    @property
    def image_member(self) -> str:
        return f"images/{self.stem}.png"

    @property
    def mask_member(self) -> str:
        return f"masks/{self.stem}.png"

    def to_json(self) -> dict[str, Any]:
        return {
            "stem": self.stem,
            "split": self.split,
            "label": self.label,
            "defect_type": self.defect_type,
            "seed": self.seed,
            "sha256": {"image": self.image_sha256, "mask": self.mask_sha256},
            **dict(self.record),
        }

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> IndexEntry:
        fixed = {"stem", "split", "label", "defect_type", "seed", "sha256"}
        missing = sorted(fixed - set(row))
        if missing:
            raise ShardError(f"index row lacks {missing}")
        return cls(
            stem=row["stem"],
            split=row["split"],
            label=int(row["label"]),
            defect_type=row["defect_type"],
            seed=int(row["seed"]),
            image_sha256=row["sha256"]["image"],
            mask_sha256=row["sha256"]["mask"],
            record={k: v for k, v in row.items() if k not in fixed},
        )


@dataclass(frozen=True)
class ShardIndex:
    """The parsed index.json of one shard: a header (spec, spec hash) and its entries in order."""

    header: Mapping[str, Any]
    entries: tuple[IndexEntry, ...]

    @property
    def spec_hash(self) -> str:
        return str(self.header.get("spec_hash", ""))


ShardItem = tuple[IndexEntry, bytes, bytes]  # (index row, image PNG, mask PNG)


def shard_item(
    image: np.ndarray,
    mask: np.ndarray,
    *,
    stem: str,
    split: str,
    label: int,
    defect_type: str,
    seed: int,
    record: Mapping[str, Any],
) -> ShardItem:
    """One image for `write_shard`: image and mask encoded as PNG, and its index row with both sha256."""
    image_png, mask_png = encode_png(image), encode_png(mask)
    entry = IndexEntry(stem, split, label, defect_type, seed, bytes_sha256(image_png), bytes_sha256(mask_png), record)
    return entry, image_png, mask_png


def spec_hash(spec: Mapping[str, Any]) -> str:
    """sha256 of a shard's spec (canonical JSON): what `check_shard` compares with the current plan's."""
    return bytes_sha256(json.dumps(spec, sort_keys=True).encode("utf-8"))


def _add_member(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_STORED  # PNGs are compressed already
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)


def write_shard(path: Path, header: Mapping[str, Any], items: Iterable[ShardItem]) -> str:
    """Write (entry, image PNG, mask PNG) items plus an index atomically to `path`; return its sha256."""
    rows = []
    with atomic_path(path, fsync=True) as temp, zipfile.ZipFile(temp, "w") as archive:
        for entry, image_png, mask_png in items:
            _add_member(archive, entry.image_member, image_png)
            _add_member(archive, entry.mask_member, mask_png)
            rows.append(entry.to_json())
        index = {"format": SHARD_FORMAT, **dict(header), "entries": rows}
        _add_member(archive, INDEX_MEMBER, json.dumps(index, indent=1, sort_keys=True).encode("utf-8"))
    return file_sha256(path)


def read_index(path: Path) -> ShardIndex:
    """Parse a shard's index; a missing, truncated or malformed archive raises ShardError naming it."""
    if not path.is_file():
        raise ShardError(f"{path}: shard is missing")
    try:
        with zipfile.ZipFile(path) as archive:
            index = json.loads(archive.read(INDEX_MEMBER))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, OSError) as exc:
        raise ShardError(f"{path}: unreadable shard ({exc})") from exc
    if index.get("format") != SHARD_FORMAT:
        raise ShardError(f"{path}: shard format {index.get('format')!r}, expected {SHARD_FORMAT}")
    header = {k: v for k, v in index.items() if k != "entries"}
    return ShardIndex(header, tuple(IndexEntry.from_json(row) for row in index["entries"]))


def check_shard(path: Path, expected_spec_hash: str | None = None) -> list[str]:
    """Every problem found in a shard: unreadable, wrong spec, or a member whose sha256 differs."""
    try:
        index = read_index(path)
    except ShardError as exc:
        return [str(exc)]
    problems = []
    if expected_spec_hash is not None and index.spec_hash != expected_spec_hash:
        problems.append(
            f"{path}: rendered for another spec ({index.spec_hash[:12]}, expected {expected_spec_hash[:12]})"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            for entry in index.entries:
                members = ((entry.image_member, entry.image_sha256), (entry.mask_member, entry.mask_sha256))
                for member, expected in members:
                    try:
                        actual = bytes_sha256(archive.read(member))
                    except (KeyError, zipfile.BadZipFile, OSError) as exc:
                        problems.append(f"{path}!{member}: missing or unreadable ({exc})")
                        continue
                    if actual != expected:
                        problems.append(f"{path}!{member}: sha256 {actual[:12]} does not match index {expected[:12]}")
    except (zipfile.BadZipFile, OSError) as exc:
        problems.append(f"{path}: unreadable shard ({exc})")
    return problems


class ShardReader:
    """Random access to the images and masks of one shard (keeps the archive open)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.index = read_index(path)
        self._archive: zipfile.ZipFile | None = None

    def _open(self) -> zipfile.ZipFile:
        if self._archive is None:
            self._archive = zipfile.ZipFile(self.path)
        return self._archive

    def read(self, entry: IndexEntry, *, verify: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(image RGB uint8, mask uint8) of `entry`; with `verify`, check both sha256 first."""
        archive = self._open()
        image_png, mask_png = archive.read(entry.image_member), archive.read(entry.mask_member)
        if verify:
            for member, data, expected in (
                (entry.image_member, image_png, entry.image_sha256),
                (entry.mask_member, mask_png, entry.mask_sha256),
            ):
                if bytes_sha256(data) != expected:
                    raise ShardError(f"{self.path}!{member}: sha256 does not match the index")
        return decode_png(image_png, color=True), decode_png(mask_png, color=False)

    def close(self) -> None:
        if self._archive is not None:
            self._archive.close()
            self._archive = None

    def __getstate__(self) -> dict[str, Any]:  # picklable for worker processes: reopen lazily
        return {**self.__dict__, "_archive": None}


def entries_of(paths: Sequence[Path]) -> list[tuple[Path, IndexEntry]]:
    """(shard path, entry) for every image of the given shards, in order."""
    return [(path, entry) for path in paths for entry in read_index(path).entries]
