"""A Dataset that reads images and masks straight from a split's shards (no unpacking)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

import numpy as np

from miad.data.manifest import Manifest, read_manifest
from miad.data.shards import IndexEntry, ShardReader


@dataclass(frozen=True)
class Sample:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    mask: np.ndarray  # (H, W) uint8, 255 on defect pixels
    entry: IndexEntry


class ShardDataset(Sequence[Sample]):
    """The images of one split, in manifest order; `limit` keeps a prefix (Table 7's nested subsets).

    Indexing works like a torch Dataset (`len`, `ds[i]`), so a DataLoader can wrap it; labels and
    defect types come from the indexes without decoding a pixel.
    """

    def __init__(self, split_directory: Path, *, limit: int | None = None, verify: bool = False) -> None:
        self.root = Path(split_directory)
        self.manifest: Manifest = read_manifest(self.root)
        self.verify = verify
        self._readers = [ShardReader(self.root / record.file) for record in self.manifest.shards]
        self._locations = [(r, e) for r in self._readers for e in r.index.entries]
        if limit is not None:
            if limit < 1 or limit > len(self._locations):
                raise ValueError(f"limit must be in [1, {len(self._locations)}] for {self.root}, got {limit}")
            self._locations = self._locations[:limit]

    def __len__(self) -> int:
        return len(self._locations)

    @overload
    def __getitem__(self, i: int) -> Sample: ...
    @overload
    def __getitem__(self, i: slice) -> list[Sample]: ...
    def __getitem__(self, i: int | slice) -> Sample | list[Sample]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        reader, entry = self._locations[i]
        image, mask = reader.read(entry, verify=self.verify)
        return Sample(image, mask, entry)

    @property
    def entries(self) -> list[IndexEntry]:
        return [entry for _, entry in self._locations]

    @property
    def labels(self) -> np.ndarray:
        return np.array([e.label for e in self.entries], dtype=np.int64)

    @property
    def images(self) -> ImageView:
        """The images alone, lazily, for `AnomalyMethod.fit`."""
        return ImageView(self)

    def close(self) -> None:
        for reader in self._readers:
            reader.close()


class ImageView(Sequence[np.ndarray]):
    """A lazy sequence of a dataset's images."""

    def __init__(self, dataset: ShardDataset) -> None:
        self._dataset = dataset

    def __len__(self) -> int:
        return len(self._dataset)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self._dataset[i].image
