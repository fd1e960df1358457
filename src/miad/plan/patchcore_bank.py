"""PatchCore's memory bank priced before it is built: its sizes, its peak memory and its coreset work.

The figures follow `miad.methods.patchcore` step by step: N images give N x h x w patch embeddings of C
channels (h, w = input size / the first feature map's stride); the bank is built in one piece while those fit
in `EXACT_BANK_BYTES`, else in two passes that keep only the (N x h x w, k) sparse projections; greedy k-center
then makes one pass over the projections per pick. These are computed, not measured: the bench
(`benchmarks/bench_patchcore_memory.py`) checks them against measured peaks and measures the CPU's coreset rate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

from miad.methods import patchcore

FLOAT32_BYTES = 4


@cache
def feature_geometry(backbone: str, layers: tuple[int, ...]) -> tuple[int, int]:
    """(embedding channels, stride of the first map) of timm `backbone` at `layers`; no weights are read."""
    import timm
    import torch

    with torch.device("meta"):  # architecture only: no parameter memory, no initialisation
        model = timm.create_model(backbone, pretrained=False, features_only=True, out_indices=layers)
    return int(sum(model.feature_info.channels())), int(model.feature_info.reduction()[0])


@dataclass(frozen=True)
class BankSizes:
    """What PatchCore's `fit` holds and computes for `n_images` training images."""

    n_images: int
    n_patches: int  # N x h x w rows of the full bank
    channels: int  # C, the embedding dimension
    projected_dim: int  # k, the Johnson-Lindenstrauss dimension of the coreset's projections
    coreset_size: int  # M rows kept
    streamed: bool  # True: the two-pass path (the full bank is never held)
    whole_bank_bytes: int  # (N, C) float32: what the one-piece path holds (twice at its peak)
    projections_bytes: int  # (N, k) float32: the coreset's working set
    memory_bank_bytes: int  # (M, C) float32 plus the (C, k) projection: the saved model
    coreset_elements: int  # M picks x N rows x k: projection entries read by greedy k-center

    @property
    def peak_bytes(self) -> int:
        """The bank's share of fit's peak (the forward pass's activations come on top)."""
        if self.streamed:
            return self.projections_bytes + self.memory_bank_bytes
        return 2 * self.whole_bank_bytes + self.projections_bytes

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "peak_bytes": self.peak_bytes}


def bank_sizes(n_images: int, image_size: int, channels: int, stride: int, coreset_ratio: float) -> BankSizes:
    """PatchCore's sizes for `n_images` inputs of `image_size` px whose first feature map has `stride`."""
    if n_images < 1 or image_size < stride or channels < 1 or not 0 < coreset_ratio <= 1:
        raise ValueError(f"bank_sizes: bad sizes {n_images=} {image_size=} {channels=} {stride=} {coreset_ratio=}")
    n_patches = n_images * (image_size // stride) ** 2
    k = min(patchcore.jl_min_dim(n_patches), channels)
    whole = n_patches * channels * FLOAT32_BYTES
    coreset = n_patches if coreset_ratio >= 1.0 else max(1, int(n_patches * coreset_ratio))
    picks = 0 if coreset_ratio >= 1.0 else coreset
    return BankSizes(
        n_images=n_images,
        n_patches=n_patches,
        channels=channels,
        projected_dim=k,
        coreset_size=coreset,
        streamed=whole > patchcore.EXACT_BANK_BYTES,  # read now: a bench may lower it
        whole_bank_bytes=whole,
        projections_bytes=0 if picks == 0 else n_patches * k * FLOAT32_BYTES,
        memory_bank_bytes=(coreset + k) * channels * FLOAT32_BYTES,
        coreset_elements=picks * n_patches * k,
    )
