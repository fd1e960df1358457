"""The one place that derives every seed from the root seed in params.yaml.

A seed is a pure function of the root seed and a path of keys (stage, variant, scenario, split,
shard, index), so any task can be rerun alone, in any order, on any worker, and draw the same numbers.
"""

from __future__ import annotations

import hashlib

import numpy as np

SEED_BITS = 63  # fits a signed int64 and every RNG we feed


def derive_seed(root: int, *keys: str | int) -> int:
    """Return a 63-bit seed for the path `keys` under `root` (sha256 of their canonical text)."""
    if isinstance(root, bool) or not isinstance(root, int) or root < 0:
        raise ValueError(f"root seed must be a non-negative int, got {root!r}")
    text = "/".join([str(root), *(f"{type(k).__name__}:{k}" for k in keys)])
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> (64 - SEED_BITS)


def rng_for(root: int, *keys: str | int) -> np.random.Generator:
    """A numpy Generator seeded from `derive_seed(root, *keys)`."""
    return np.random.default_rng(derive_seed(root, *keys))


def torch_seed(seed: int) -> int:
    """Fold a 63-bit seed into the range torch.manual_seed accepts on every platform."""
    return seed % (2**32)
