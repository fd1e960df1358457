"""Disjoint train/test pools of backgrounds and degradation textures: pure file listing, no bpy.

The pools are what makes UB and US leak-free: a train image draws only from the train pool and a test image only
from the test pool, and the pools share no file. Backgrounds come from the asset library (`data/backgrounds/<split>`)
plus, optionally, HDRIs from a directory (e.g. Debian's blender-data studio lights), split by sorted name: every
third one is a test HDRI. Night backgrounds are layouts of background objects, numbered: the test ids follow the
train ids. Names are recorded relative to their root, so they compare across machines.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from miad.assets import POOL_SIZES, TEXTURE_KINDS
from miad.hashing import file_sha256

HDRI_SUFFIXES = (".exr", ".hdr")
HDRI_TEST_EVERY = 3  # sorted HDRIs: index % 3 == 2 goes to the test pool
NIGHT_LAYOUTS = dict(POOL_SIZES)  # layouts of background objects per split, as many as background images
HDRI_PREFIX = "hdri:"


def _check_split(split: str) -> None:
    if split not in POOL_SIZES:
        raise ValueError(f"split must be one of {sorted(POOL_SIZES)}, got {split!r}")


def _pngs(directory: Path) -> list[Path]:
    files = sorted(directory.glob("*.png"))
    if not files:
        raise FileNotFoundError(f"{directory}: no .png files; build the asset library with `miad assets build`")
    return files


def hdri_files(hdri_dir: str | Path | None) -> list[Path]:
    """HDRIs in `hdri_dir`, sorted by name; none when the option is off. A set but missing directory is an error."""
    if not hdri_dir:
        return []
    directory = Path(hdri_dir)
    if not directory.is_dir():
        raise FileNotFoundError(f"render.hdri_dir: {directory} is not a directory (set it to null to use no HDRIs)")
    return sorted(p for p in directory.iterdir() if p.suffix.lower() in HDRI_SUFFIXES)


def day_backgrounds(assets: Path, split: str, hdri_dir: str | Path | None = None) -> list[tuple[str, Path]]:
    """(name, path) of the day backgrounds of `split`: asset-library plates, then the split's HDRIs."""
    _check_split(split)
    plates = [(f"backgrounds/{split}/{p.name}", p) for p in _pngs(Path(assets) / "backgrounds" / split)]
    hdris = [
        (f"{HDRI_PREFIX}{p.name}", p)
        for i, p in enumerate(hdri_files(hdri_dir))
        if (i % HDRI_TEST_EVERY == HDRI_TEST_EVERY - 1) == (split == "test")
    ]
    return plates + hdris


def night_layouts(split: str) -> list[int]:
    """Ids of the background-object layouts of `split` (train ids first, test ids after them)."""
    _check_split(split)
    start = 0 if split == "train" else NIGHT_LAYOUTS["train"]
    return list(range(start, start + NIGHT_LAYOUTS[split]))


def textures(assets: Path, split: str) -> list[tuple[str, Path]]:
    """(name, path) of the degradation textures (dust, rust, dirt) of `split`."""
    _check_split(split)
    return [
        (f"textures/{kind}/{split}/{p.name}", p)
        for kind in TEXTURE_KINDS
        for p in _pngs(Path(assets) / "textures" / kind / split)
    ]


def pools_digest(assets: Path, hdri_dir: str | Path | None) -> str:
    """sha256 over every pool file's name and bytes: part of a shard's spec, so new assets re-render."""
    digest = hashlib.sha256()
    for split in POOL_SIZES:
        for name, path in day_backgrounds(assets, split, hdri_dir) + textures(assets, split):
            digest.update(json.dumps([split, name]).encode("utf-8"))
            digest.update(bytes.fromhex(file_sha256(path)))
    return digest.hexdigest()
