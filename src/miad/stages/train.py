"""Train one method on one rendered dataset and save its checkpoint (safetensors + resolved config)."""

from __future__ import annotations

from pathlib import Path

from miad.config import Params
from miad.data.dataset import ShardDataset
from miad.data.layout import split_dir
from miad.seeding import derive_seed


def method_config(params: Params, method: str) -> object:
    """The active profile's config block for `method` (a frozen dataclass)."""
    return getattr(params.active.train, method)


def train(params: Params, method: str, variant: str, scenario: str, renders: Path, out: Path) -> None:
    """Fit `method` on the train split of `variant/scenario` and save it to `out` (replaced atomically)."""
    from miad.methods import create_method  # torch loads only for stages that need it

    dataset = ShardDataset(split_dir(renders, variant, scenario, "train"))
    seed = derive_seed(params.seed, "train", method, variant, scenario)
    model = create_method(method, method_config(params, method), seed, params.active.train.device)
    model.fit(dataset.images)
    model.save(out)
    dataset.close()
