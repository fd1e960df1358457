"""Workspace against reference digests: which images and tensors differ, and, given the reference's own images or
checkpoints, by how much.

Each reference row is identical, differs or is missing; rows only the workspace has are extra. An extra image or
tensor in a dataset or checkpoint the reference has counts as a difference; a dataset or checkpoint the reference
lacks altogether (one you added) is listed but not judged, as `miad compare` does with metric cells. A digest tells
*that* pixels or weights changed; how much needs the reference's images or checkpoints (`measure_pixels`,
`measure_weights`: another clone's folders, or a copy fetched with `dvc get`). A mask that differs is always
reported as such: that is another dataset, not other bits of the same picture.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from miad.reporting.digests import (
    Checkpoint,
    ImageDigest,
    RendersFolder,
    TensorDigest,
    checkpoint_file,
    digest_array,
)

SAME_PICTURE_PSNR_DB = 40.0  # an 8-bit image this close to the reference is the same picture to the eye


# --- comparing renders ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PixelDiff:
    """How far two decoded uint8 arrays of one shape lie apart."""

    max_abs: int
    psnr: float  # dB, 8-bit peak 255 over every value; inf when identical
    changed: float  # fraction of pixels (positions) differing in any channel


def pixel_diff(ours: np.ndarray, theirs: np.ndarray) -> PixelDiff | None:
    """None when the shapes differ."""
    if ours.shape != theirs.shape:
        return None
    delta = np.abs(ours.astype(np.int16) - theirs.astype(np.int16))  # (H, W) or (H, W, C)
    if not delta.size:
        return PixelDiff(0, math.inf, 0.0)
    mse = float(np.mean(delta.astype(np.float64) ** 2))
    psnr = math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)
    changed = float(np.mean(delta.reshape(*delta.shape[:2], -1).any(axis=-1)))
    return PixelDiff(int(delta.max()), psnr, changed)


@dataclass(frozen=True)
class ImageChange:
    """One image whose digests differ from the reference's, and (with the reference images) by how much."""

    ours: ImageDigest
    reference: ImageDigest
    image: PixelDiff | None = None  # None: not measured, or another shape
    mask: PixelDiff | None = None
    other_shape: bool = False  # the reference image has another shape
    note: str = ""

    @property
    def mask_differs(self) -> bool:
        return self.ours.mask != self.reference.mask

    @property
    def kind(self) -> str:
        """What changed, worst first: the mask ("mask differs": another dataset), the picture ("another picture":
        below SAME_PICTURE_PSNR_DB, or another shape), only bits ("other bits, same picture"), or something not
        measured ("image differs")."""
        if self.mask_differs:
            return "mask differs"
        if self.other_shape:
            return "another picture"
        if self.image is not None:
            return "other bits, same picture" if self.image.psnr >= SAME_PICTURE_PSNR_DB else "another picture"
        return "image differs"


@dataclass(frozen=True)
class DatasetCounts:
    dataset: str
    reference: int  # images in the reference
    identical: int
    differ: int
    missing: int
    extra: int  # images the reference's dataset lacks


@dataclass(frozen=True)
class RendersComparison:
    datasets: tuple[DatasetCounts, ...]  # every dataset the reference has
    changes: tuple[ImageChange, ...]
    missing: tuple[ImageDigest, ...]  # reference rows the workspace lacks
    extra: tuple[ImageDigest, ...]  # workspace rows in datasets the reference has
    unjudged: Mapping[str, int]  # datasets only the workspace has: images in each
    measured: bool = False  # pixel differences were measured against the reference images

    @property
    def identical(self) -> bool:
        return not self.changes and not self.missing and not self.extra


def compare_renders(ours: Sequence[ImageDigest], reference: Sequence[ImageDigest]) -> RendersComparison:
    """Pair the workspace's image digests with the reference's."""
    mine = {(r.dataset, r.item): r for r in ours}
    theirs = {(r.dataset, r.item): r for r in reference}
    known = {r.dataset for r in reference}
    changes = tuple(ImageChange(mine[k], r) for k, r in sorted(theirs.items()) if k in mine and mine[k] != r)
    missing = tuple(r for k, r in sorted(theirs.items()) if k not in mine)
    extra = tuple(r for k, r in sorted(mine.items()) if k not in theirs and r.dataset in known)
    sizes, differ = Counter(r.dataset for r in reference), Counter(c.reference.dataset for c in changes)
    lacking, added = Counter(r.dataset for r in missing), Counter(r.dataset for r in extra)
    counts = [
        DatasetCounts(d, sizes[d], sizes[d] - differ[d] - lacking[d], differ[d], lacking[d], added[d])
        for d in sorted(known)
    ]
    unjudged = Counter(r.dataset for r in ours if r.dataset not in known)
    return RendersComparison(tuple(counts), changes, missing, extra, dict(sorted(unjudged.items())))


def measure_pixels(
    comparison: RendersComparison, workspace: Path, against: Path, *, progress: bool = False
) -> RendersComparison:
    """Decode both images of every differing pair (ours from `workspace`, the reference's from `against`, a renders
    folder) and measure how far they lie apart. A copy in `against` whose digests are not the reference's is
    measured anyway and flagged in the note."""
    ours, theirs = RendersFolder(workspace), RendersFolder(against)
    changes = []
    try:
        for change in tqdm(comparison.changes, desc="pixels", unit="image", disable=not progress, leave=False):
            key = (change.reference.dataset, change.reference.item)
            mine, reference = ours.read(*key), theirs.read(*key)
            if mine is None or reference is None:
                changes.append(replace(change, note=f"not in {workspace if mine is None else against}"))
                continue
            notes = []
            copy = (digest_array(reference[0]), digest_array(reference[1]))
            if copy != (change.reference.image, change.reference.mask):
                notes.append(f"{against} holds other bits than the reference digests")
            image, mask = pixel_diff(mine[0], reference[0]), pixel_diff(mine[1], reference[1])
            if image is None:
                notes.insert(0, f"shape {list(mine[0].shape)}, reference {list(reference[0].shape)}")
            shaped = replace(change, image=image, mask=mask, other_shape=image is None, note="; ".join(notes))
            changes.append(shaped)
    finally:
        ours.close()
        theirs.close()
    return replace(comparison, changes=tuple(changes), measured=True)


# --- comparing models -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorChange:
    tensor: str
    status: str  # "differs", "missing" (the reference has it, you do not) or "extra"
    max_abs: float | None = None  # the largest absolute weight difference, with the reference checkpoint
    note: str = ""


@dataclass(frozen=True)
class CheckpointChange:
    model: str
    tensors: int  # tensors in the reference's checkpoint
    changes: tuple[TensorChange, ...]
    note: str = ""

    def count(self, status: str) -> int:
        return sum(1 for c in self.changes if c.status == status)

    @property
    def max_abs(self) -> float | None:
        values = [c.max_abs for c in self.changes if c.max_abs is not None]
        if any(math.isnan(v) for v in values):
            return math.nan  # a NaN on one side only
        return max(values) if values else None


@dataclass(frozen=True)
class ModelsComparison:
    checkpoints: int  # in the reference
    tensors: int  # in the reference
    changed: tuple[CheckpointChange, ...]  # checkpoints on both sides whose tensors differ
    missing: tuple[str, ...]  # reference checkpoints the workspace lacks
    unjudged: tuple[str, ...]  # checkpoints only the workspace has
    measured: bool = False

    @property
    def identical(self) -> bool:
        return not self.changed and not self.missing


def compare_models(ours: Sequence[TensorDigest], reference: Sequence[TensorDigest]) -> ModelsComparison:
    """Pair the workspace's tensor digests with the reference's, checkpoint by checkpoint."""
    mine: dict[str, dict[str, str]] = {}
    theirs: dict[str, dict[str, str]] = {}
    for rows, table in ((ours, mine), (reference, theirs)):
        for row in rows:
            table.setdefault(row.model, {})[row.tensor] = row.digest
    changed = []
    for model in sorted(set(mine) & set(theirs)):
        a, b = mine[model], theirs[model]
        changes = [TensorChange(n, "differs") for n in sorted(set(a) & set(b)) if a[n] != b[n]]
        changes += [TensorChange(n, "missing") for n in sorted(set(b) - set(a))]
        changes += [TensorChange(n, "extra") for n in sorted(set(a) - set(b))]
        if changes:
            changed.append(CheckpointChange(model, len(b), tuple(changes)))
    return ModelsComparison(
        len(theirs),
        len(reference),
        tuple(changed),
        tuple(sorted(set(theirs) - set(mine))),
        tuple(sorted(set(mine) - set(theirs))),
    )


def measure_weights(
    comparison: ModelsComparison,
    reference: Sequence[TensorDigest],
    workspace: Path,
    against: Path,
    *,
    progress: bool = False,
) -> ModelsComparison:
    """The largest absolute difference of every differing tensor, against the checkpoints under `against` (a folder
    holding models/ and models_size/). A reference copy whose digest is not the reference's is flagged."""
    expected = {(r.model, r.tensor): r.digest for r in reference}
    changed = []
    for checkpoint in tqdm(comparison.changed, desc="weights", unit="model", disable=not progress, leave=False):
        if not checkpoint_file(Path(against) / checkpoint.model).is_file():
            changed.append(replace(checkpoint, note=f"not in {against}"))
            continue
        mine, theirs = Checkpoint(Path(workspace) / checkpoint.model), Checkpoint(Path(against) / checkpoint.model)
        tensors = []
        for change in checkpoint.changes:
            if change.status != "differs" or change.tensor not in theirs.names:
                tensors.append(change)
                continue
            notes = []
            if theirs.digest(change.tensor) != expected[(checkpoint.model, change.tensor)]:
                notes.append(f"{against} holds other bits than the reference digest")
            shapes = mine.shape(change.tensor), theirs.shape(change.tensor)
            if shapes[0] != shapes[1]:
                tensors.append(replace(change, note="; ".join([f"shape {shapes[0]}, reference {shapes[1]}", *notes])))
                continue
            delta = (mine.values(change.tensor) - theirs.values(change.tensor)).abs()
            largest = float(delta.max()) if delta.numel() else 0.0
            tensors.append(replace(change, max_abs=largest, note="; ".join(notes)))
        changed.append(replace(checkpoint, changes=tuple(tensors)))
    return replace(comparison, changed=tuple(changed), measured=True)
