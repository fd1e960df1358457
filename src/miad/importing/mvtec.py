"""Import an MVTec-layout class folder as one of our datasets (shards + manifests, sha256 per file).

The layout (MVTec AD's, which MIAD's release follows):

    <class>/train/good/<stem>.<png|jpg|jpeg>
    <class>/test/good/<stem>.<ext>
    <class>/test/<defect>/<stem>.<ext>
    <class>/ground_truth/<defect>/<stem>_mask.png

Label and defect type come from the folder names, masks from ground_truth (any value > 0 is a defect pixel;
good images get an empty mask). Images may be any size, one size per class; they are decoded (JPEG too) and
stored as PNG, so the imported pixels are exactly the decoded ones. Every layout problem is collected and named
before anything is written: a defective image without a mask, a mask without an image, an unknown extension, an
empty class, a stray file or folder. What only decoding shows (an image of another size, a mask of another size,
a defective image's mask that is all zero) is named when met. The dataset folder is written in a temp folder and
renamed into place, so a failed import leaves the previous one (or nothing) behind. Hidden files (`.name`) are
ignored. MVTec LOCO's per-image mask folders and its `validation/` split are not read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from miad.atomic import atomic_directory
from miad.data.layout import GOOD, SPLITS, shard_name
from miad.data.manifest import build_manifest, write_manifest
from miad.data.shards import ShardItem, shard_item, spec_hash, write_shard
from miad.errors import MiadError
from miad.hashing import file_sha256

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MASK_SUFFIX = "_mask.png"
SHOWN_PROBLEMS = 20  # problems listed in one error message


class LayoutError(MiadError, ValueError):
    """An MVTec-layout folder that cannot be imported; the message names every problem found."""


@dataclass(frozen=True)
class SourceImage:
    """One image of the class folder, with its mask file (None for good images)."""

    path: Path
    split: str
    defect_type: str
    mask: Path | None

    @property
    def label(self) -> int:
        return 0 if self.defect_type == GOOD else 1


@dataclass(frozen=True)
class MvtecClass:
    """A scanned, valid class folder."""

    root: Path
    images: tuple[SourceImage, ...]

    def split(self, name: str) -> list[SourceImage]:
        return [image for image in self.images if image.split == name]

    def counts(self) -> dict[str, dict[str, int]]:
        """{split: {defect type: images}}."""
        return {s: dict(sorted(Counter(i.defect_type for i in self.split(s)).items())) for s in SPLITS}


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _images_in(folder: Path, problems: list[str]) -> list[Path]:
    """The image files of one `<split>/<type>` folder; anything else is named in `problems`."""
    found = []
    for path in _visible(folder):
        if path.is_dir():
            problems.append(f"{path}: stray folder (expected only images in {folder})")
        elif path.suffix.lower() not in IMAGE_SUFFIXES:
            problems.append(f"{path}: unknown extension {path.suffix!r}, expected one of {list(IMAGE_SUFFIXES)}")
        else:
            found.append(path)
    return found


def scan(root: Path) -> MvtecClass:
    """Check the layout of class folder `root` (files only, no decoding); raise LayoutError naming every problem."""
    root = Path(root)
    if not root.is_dir():
        raise LayoutError(f"{root}: no such folder (expected an MVTec-layout class folder)")
    problems: list[str] = []
    for path in _visible(root):
        if path.name not in (*SPLITS, "ground_truth"):
            kind = "folder" if path.is_dir() else "file"
            problems.append(f"{path}: stray {kind} (a class folder holds train/, test/ and ground_truth/ only)")
    images: list[SourceImage] = []
    for split in SPLITS:
        folder = root / split
        if not folder.is_dir():
            problems.append(f"{folder}: missing")
            continue
        for type_dir in _visible(folder):
            if not type_dir.is_dir():
                problems.append(f"{type_dir}: stray file (expected one folder per image type in {folder})")
                continue
            if split == "train" and type_dir.name != GOOD:
                problems.append(f"{type_dir}: the train split holds good images only (train/good)")
                continue
            truth = root / "ground_truth" / type_dir.name
            for path in _images_in(type_dir, problems):
                mask = None if type_dir.name == GOOD else truth / f"{path.stem}{MASK_SUFFIX}"
                images.append(SourceImage(path, split, type_dir.name, mask))
    _check_masks(root, images, problems)
    named = Counter((i.split, i.defect_type, i.path.stem) for i in images)
    for image in images:
        if named[(image.split, image.defect_type, image.path.stem)] > 1:
            problems.append(f"{image.path}: another image in {image.path.parent} has the stem {image.path.stem!r}")
    counts = Counter((i.split, i.label) for i in images)
    for (split, label), what in ((("train", 0), "good training images"), (("test", 0), "good test images"),
                                 (("test", 1), "defective test images")):  # fmt: skip
        if counts[(split, label)] == 0:
            problems.append(f"{root}: empty class: no {what} ({split}/{'good' if label == 0 else '<defect>'}/)")
    if problems:
        shown = "\n  ".join(problems[:SHOWN_PROBLEMS])
        more = f"\n  ... and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
        raise LayoutError(
            f"{root}: not an importable MVTec-layout class folder ({len(problems)} problems):\n  {shown}{more}"
        )
    return MvtecClass(root, tuple(images))


def _check_masks(root: Path, images: Sequence[SourceImage], problems: list[str]) -> None:
    """Every defective image has its mask file; every file under ground_truth belongs to a defective image."""
    expected = {i.mask for i in images if i.mask is not None}
    for image in images:
        if image.mask is not None and not image.mask.is_file():
            problems.append(f"{image.path}: defective image without a mask (expected {image.mask})")
    truth = root / "ground_truth"
    if not truth.is_dir():
        return
    for type_dir in _visible(truth):
        if not type_dir.is_dir() or type_dir.name == GOOD:
            problems.append(f"{type_dir}: stray {'folder' if type_dir.is_dir() else 'file'} in ground_truth/")
            continue
        for path in _visible(type_dir):
            if path not in expected:
                problems.append(f"{path}: stray mask (no test/{type_dir.name}/ image of that name)")


def _decode(path: Path, *, color: bool) -> np.ndarray:
    pixels = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_COLOR if color else cv2.IMREAD_GRAYSCALE)
    if pixels is None:
        raise LayoutError(f"{path}: not a readable image")
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB) if color else pixels


def stems(images: Sequence[SourceImage]) -> list[str]:
    """Our stem for each image of one split: the file's stem when those are unique in the split (so an exported
    dataset comes back with its own names), else `<type>_<stem>` (MVTec numbers each type folder from 000)."""
    plain = [i.path.stem for i in images]
    if len(set(plain)) == len(plain):
        return plain
    return [f"{i.defect_type}_{i.path.stem}" for i in images]


@dataclass
class ImportReport:
    """What an import wrote."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    height: int = 0
    width: int = 0


def _items(
    root: Path, images: Sequence[SourceImage], names: Sequence[str], size: list[int], bar: tqdm
) -> Iterator[ShardItem]:
    for image, stem in zip(images, names, strict=True):
        pixels = _decode(image.path, color=True)
        if not size:
            size.extend(pixels.shape[:2])
        if list(pixels.shape[:2]) != size:
            raise LayoutError(
                f"{image.path}: {pixels.shape[1]}x{pixels.shape[0]} px, but the class's first image is "
                f"{size[1]}x{size[0]} px (one size per class)"
            )
        if image.mask is None:
            mask = np.zeros(size, dtype=np.uint8)
        else:
            raw = _decode(image.mask, color=False)
            if list(raw.shape[:2]) != size:
                raise LayoutError(
                    f"{image.mask}: mask of {raw.shape[1]}x{raw.shape[0]} px for an image of {size[1]}x{size[0]} px"
                )
            mask = np.where(raw > 0, 255, 0).astype(np.uint8)
            if not mask.any():
                raise LayoutError(
                    f"{image.mask}: all zero, but {image.path.relative_to(root).as_posix()} is a defective image: "
                    "its mask must mark at least one defect pixel (value > 0)"
                )
        record = {
            "source": {
                "file": image.path.relative_to(root).as_posix(),
                "sha256": file_sha256(image.path),
                "mask": None if image.mask is None else image.mask.relative_to(root).as_posix(),
                "mask_sha256": None if image.mask is None else file_sha256(image.mask),
            },
            "defect_pixels": int(np.count_nonzero(mask)),
        }
        bar.update(1)
        yield shard_item(
            pixels,
            mask,
            stem=stem,
            split=image.split,
            label=image.label,
            defect_type=image.defect_type,
            seed=0,  # nothing is drawn
            record=record,
        )


def import_mvtec(
    source: Path, renders: Path, variant: str, scenario: str, *, shard_size: int, progress: bool = True
) -> ImportReport:
    """Import class folder `source` as `renders/<variant>/<scenario>` (replacing it whole, atomically)."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be at least 1, got {shard_size}")
    found = scan(source)
    report = ImportReport(counts=found.counts())
    size: list[int] = []
    target = Path(renders) / variant / scenario
    with (
        tqdm(total=len(found.images), desc=f"import {variant}/{scenario}", unit="img", disable=not progress) as bar,
        atomic_directory(target) as temp,
    ):
        for split in SPLITS:
            images = found.split(split)
            names = stems(images)
            ordered = sorted(zip(names, images, strict=True), key=lambda pair: pair[0])
            images, names = [i for _, i in ordered], [n for n, _ in ordered]
            directory = temp / split
            files = []
            for k, start in enumerate(range(0, len(images), shard_size)):
                chunk = images[start : start + shard_size]
                spec = {"layout": "mvtec", "sources": [str(i.path.relative_to(found.root)) for i in chunk]}
                header = {
                    "variant": variant,
                    "scenario": scenario,
                    "split": split,
                    "spec": spec,
                    "spec_hash": spec_hash(spec),
                }
                items = _items(found.root, chunk, names[start : start + shard_size], size, bar)
                write_shard(directory / shard_name(k), header, items)
                files.append(shard_name(k))
            height, width = size
            manifest_header = {
                "variant": variant,
                "scenario": scenario,
                "split": split,
                "resolution": height if height == width else None,
                "height": height,
                "width": width,
                "factors": [],
                "source": {"layout": "mvtec", "root": str(source)},
            }
            write_manifest(directory, build_manifest(directory, manifest_header, files))
    report.height, report.width = size
    return report
