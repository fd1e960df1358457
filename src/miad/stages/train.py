"""Train one method on rendered data and save its checkpoint (safetensors + resolved config).

One scenario for most methods; several (the union of their training images) for a unified method
such as UniAD. `fraction` keeps a prefix of each training split: Table 7's nested subsets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from miad.catalog import PLAN_VARIANT
from miad.config import Params
from miad.data.dataset import ShardDataset
from miad.data.layout import split_dir
from miad.seeding import derive_seed


def method_config(params: Params, method: str, *, uncapped: bool = False) -> object:
    """The active profile's config block for `method`; `uncapped` lifts `max_train_images`."""
    config = getattr(params.active.train, method)
    return dataclasses.replace(config, max_train_images=None) if uncapped else config


def prefix_size(total: int, fraction: float) -> int:
    """Images in the `fraction` prefix of a split of `total` (at least one)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    return max(1, round(fraction * total))


class ConcatImages(Sequence[np.ndarray]):
    """The images of several datasets, one after the other, decoded lazily."""

    def __init__(self, datasets: Sequence[ShardDataset]) -> None:
        self._datasets = list(datasets)
        self._offsets = np.cumsum([0] + [len(d) for d in self._datasets])

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        k = int(np.searchsorted(self._offsets, i, side="right")) - 1
        return self._datasets[k][i - int(self._offsets[k])].image


def train(
    params: Params,
    method: str,
    variant: str,
    scenarios: Sequence[str],
    renders: Path,
    out: Path,
    *,
    fraction: float = 1.0,
    uncapped: bool = False,
) -> None:
    """Fit `method` on the train splits of `scenarios` (a prefix of each) and save it to `out`."""
    from miad.methods import create_method  # torch loads only for stages that need it

    datasets = []
    for scenario in scenarios:
        full = ShardDataset(split_dir(renders, variant, scenario, "train"))
        datasets.append(full if fraction == 1.0 else ShardDataset(full.root, limit=prefix_size(len(full), fraction)))
    # The same for every fraction, and for every variant: they are counterfactuals of one plan (catalog.PLAN_VARIANT)
    seed = derive_seed(params.seed, "train", method, PLAN_VARIANT, *scenarios)
    model = create_method(method, method_config(params, method, uncapped=uncapped), seed, params.active.train.device)
    model.fit(ConcatImages(datasets))
    model.save(out)
    for dataset in datasets:
        dataset.close()
