"""Per-split manifests: which shards make a split, their sha256 and what they hold.

`verify_split` is what `miad verify` runs: it names every shard (or member) that is missing,
truncated or corrupt, and every file in the split folder that the manifest does not know.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from miad.atomic import write_json_atomic
from miad.data.layout import MANIFEST_NAME, manifest_path
from miad.data.shards import ShardError, check_shard, read_index
from miad.hashing import file_sha256

MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class ShardRecord:
    file: str  # file name inside the split folder
    sha256: str
    count: int
    spec_hash: str


@dataclass(frozen=True)
class Manifest:
    header: Mapping[str, Any]  # variant, scenario, split, counts
    shards: tuple[ShardRecord, ...]

    @property
    def count(self) -> int:
        return sum(s.count for s in self.shards)


def build_manifest(split_directory: Path, header: Mapping[str, Any], shard_files: Sequence[str]) -> Manifest:
    """Read the finished shards of a split and describe them (counts per label and defect type)."""
    records, labels, defects = [], Counter(), Counter()
    for name in shard_files:
        path = split_directory / name
        index = read_index(path)
        records.append(ShardRecord(name, file_sha256(path), len(index.entries), index.spec_hash))
        labels.update(str(e.label) for e in index.entries)
        defects.update(e.defect_type for e in index.entries)
    full = {
        **dict(header),
        "count": sum(r.count for r in records),
        "label_counts": dict(sorted(labels.items())),
        "defect_counts": dict(sorted(defects.items())),
    }
    return Manifest(full, tuple(records))


def write_manifest(split_directory: Path, manifest: Manifest) -> None:
    payload = {"format": MANIFEST_FORMAT, **dict(manifest.header), "shards": [vars(s) for s in manifest.shards]}
    write_json_atomic(manifest_path(split_directory), payload)


def read_manifest(split_directory: Path) -> Manifest:
    path = manifest_path(split_directory)
    if not path.is_file():
        raise ShardError(f"{path}: manifest is missing (render this split first)")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        shards = tuple(ShardRecord(**row) for row in payload.pop("shards"))
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ShardError(f"{path}: malformed manifest ({exc})") from exc
    if payload.get("format") != MANIFEST_FORMAT:
        raise ShardError(f"{path}: manifest format {payload.get('format')!r}, expected {MANIFEST_FORMAT}")
    return Manifest(payload, shards)


def verify_split(split_directory: Path) -> list[str]:
    """Every problem in a split folder; an empty list means each shard and member matches its sha256."""
    try:
        manifest = read_manifest(split_directory)
    except ShardError as exc:
        return [str(exc)]
    problems = []
    for record in manifest.shards:
        path = split_directory / record.file
        if not path.is_file():
            problems.append(f"{path}: shard is missing")
            continue
        actual = file_sha256(path)
        if actual != record.sha256:
            problems.append(f"{path}: sha256 {actual[:12]} does not match the manifest {record.sha256[:12]}")
        problems.extend(check_shard(path, record.spec_hash))
    known = {r.file for r in manifest.shards} | {MANIFEST_NAME}
    extra = sorted(p.name for p in split_directory.iterdir() if p.name not in known and not p.name.startswith("."))
    problems.extend(f"{split_directory / name}: not listed in the manifest" for name in extra)
    return problems


def split_folders(renders: Path) -> list[Path]:
    """Every split folder under a renders root (`<variant>/<scenario>/<split>/` holding a manifest), sorted."""
    return sorted(p.parent for p in renders.glob("*/*/*/manifest.json"))
