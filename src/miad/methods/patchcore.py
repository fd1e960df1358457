"""PatchCore (Roth et al. 2022) as anomalib configures it by default, which the paper used (Appendix 6.2).

Training: backbone feature maps at `config.layers` are each smoothed with a 3x3 average pool
(stride 1, padding 1), resized bilinearly to the first map's size and concatenated over channels;
every patch embedding of every training image goes into a memory bank, which greedy k-center
coreset selection (on a sparse random projection, as anomalib) shrinks to `coreset_ratio`.
Inference: the anomaly map is each test patch's Euclidean distance to its nearest memory-bank entry.

Image score: anomalib re-weights the max patch distance with the `num_neighbors` nearest memory-bank
entries; the paper scores every method by the max of its anomaly map, and so do we (the base class
enforces it). `num_neighbors` stays in the config for fidelity with anomalib's settings but is unused.

Memory: while the whole float32 bank fits in `EXACT_BANK_BYTES` it is built in one piece (as anomalib).
Above that (paper scale: 10,000 images x 784 patches x 1536 channels is 48 GB) the bank is never
held: a first pass keeps only the sparse projection of every patch, (N, k) with k ~ 390, on which the
coreset is chosen (memory O(N x k), not O(N x D), and no (N, k) temporary beside it); a second pass
over the same batches recomputes the embeddings and keeps the chosen rows, in the order chosen. Both
passes run the same batches through the same deterministic code, so the kept rows are the rows the
one-piece path would keep, up to the float rounding of projecting chunk by chunk instead of all at
once. Coreset selection and the nearest-neighbour search run on the method's device (a GPU when there
is one); the search is chunked.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from miad.backbones import (
    create_feature_extractor,
    feature_channels,
    normalization,
    warn_if_weights_changed,
    weights_sha256,
)
from miad.config import PatchCoreConfig
from miad.methods.base import AnomalyMethod
from miad.methods.portable import portable_sqrt

POOL_KERNEL = 3  # local neighbourhood aggregation (anomalib: AvgPool2d(3, 1, 1))
PROJECTION_EPS = 0.9  # Johnson-Lindenstrauss eps of anomalib's SparseRandomProjection
CDIST_CHUNK_ELEMENTS = 2**24  # max query x bank squared distances held at once (64 MiB of float32)
PROGRESS_MIN_BATCHES = 10  # show a progress bar from this many batches on
PROGRESS_MIN_CORESET = 5000  # ... and from this many coreset iterations on
SQ_NORM_CHUNK_ROWS = 2**16  # coreset: squared norms of this many projected rows at a time (no (N, k) temporary)
EXACT_BANK_BYTES = 2**30  # build the float32 bank in one piece up to this size, else in two streaming passes


def local_aggregate(features: Sequence[torch.Tensor]) -> torch.Tensor:
    """Average-pool each (B, C_i, h_i, w_i) map, resize to the first map's size, concatenate -> (B, sum C_i, h, w)."""
    pooled = [F.avg_pool2d(f, POOL_KERNEL, stride=1, padding=POOL_KERNEL // 2) for f in features]
    size = pooled[0].shape[-2:]
    resized = [
        p if p.shape[-2:] == size else F.interpolate(p, size=size, mode="bilinear", align_corners=False) for p in pooled
    ]
    return torch.cat(resized, dim=1)  # (B, C, h, w)


def jl_min_dim(n_samples: int, eps: float = PROJECTION_EPS) -> int:
    """Johnson-Lindenstrauss dimension for `n_samples` points at distortion `eps` (as sklearn computes it)."""
    return int(4 * math.log(n_samples) / (eps**2 / 2 - eps**3 / 3))


def sparse_random_projection(n_features: int, n_samples: int, generator: torch.Generator) -> torch.Tensor:
    """(D, k) Achlioptas/Li sparse projection (density 1/sqrt(D)), as anomalib; identity if k >= D."""
    n_components = jl_min_dim(n_samples)
    if n_components >= n_features:
        return torch.eye(n_features)
    density = 1 / math.sqrt(n_features)
    nonzero = torch.rand(n_features, n_components, generator=generator) < density
    signs = torch.where(torch.rand(n_features, n_components, generator=generator) < 0.5, -1.0, 1.0)
    return nonzero * signs * math.sqrt(1 / density) / math.sqrt(n_components)  # (D, k)


def greedy_coreset(features: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Indices of `size` rows of (N, D) `features` chosen by greedy k-center, started at a random row.

    As anomalib: the random start only seeds the distances; the first pick is the row farthest from it.
    """
    n = features.shape[0]
    sq_norms = torch.cat([rows.pow(2).sum(dim=1) for rows in features.split(SQ_NORM_CHUNK_ROWS)])  # (N,)
    min_dist = torch.full((n,), math.inf, device=features.device)
    selected = torch.empty(size, dtype=torch.long, device=features.device)
    idx = torch.randint(n, (1,), generator=generator).to(features.device)  # (1,)
    for i in tqdm(range(size), desc="coreset", disable=size < PROGRESS_MIN_CORESET, leave=False):
        center = features.index_select(0, idx)[0]  # (D,)
        dist = (sq_norms - 2 * (features @ center) + sq_norms.index_select(0, idx)).clamp_min_(0)  # (N,)
        torch.minimum(min_dist, dist, out=min_dist)
        idx = torch.argmax(min_dist).view(1)
        selected[i : i + 1] = idx
    return selected


def nearest_distances(queries: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
    """Euclidean distance of each (Q, D) query to its nearest (M, D) bank row -> (Q,), in bounded chunks.

    Squared distances through one matrix product each (|q|^2 - 2 q.b + |b|^2, as `torch.cdist` computes them),
    the minimum over the bank, then one square root per query, taken with `portable_sqrt`: torch's CPU square
    root gives other bits on Intel than on AMD."""
    bank_chunk = min(bank.shape[0], CDIST_CHUNK_ELEMENTS)
    query_chunk = max(1, CDIST_CHUNK_ELEMENTS // bank_chunk)
    bank_sq = bank.pow(2).sum(dim=1)  # (M,)
    out = torch.empty(queries.shape[0], dtype=queries.dtype, device=queries.device)
    for q in range(0, queries.shape[0], query_chunk):
        rows = queries[q : q + query_chunk]
        rows_sq = rows.pow(2).sum(dim=1, keepdim=True)  # (q, 1)
        best = torch.full((rows.shape[0],), math.inf, dtype=queries.dtype, device=queries.device)
        for b in range(0, bank.shape[0], bank_chunk):
            sq = rows_sq - 2 * (rows @ bank[b : b + bank_chunk].T) + bank_sq[b : b + bank_chunk]  # (q, m)
            best = torch.minimum(best, sq.min(dim=1).values)
        out[q : q + rows.shape[0]] = best
    return portable_sqrt(out.clamp_min_(0)).to(queries.device)


class PatchCore(AnomalyMethod):
    """Memory bank of locally aggregated mid-level features; anomaly = distance to the nearest patch."""

    name: ClassVar[str] = "patchcore"
    config_class: ClassVar[type] = PatchCoreConfig
    config: PatchCoreConfig

    def __init__(self, config: PatchCoreConfig, seed: int, device: str = "cpu") -> None:
        super().__init__(config, seed, device)
        self.extractor = create_feature_extractor(config.backbone, config.weights, config.layers).to(device)
        self.embedding_dim = sum(feature_channels(self.extractor))
        self._mean_std = normalization(config.backbone)
        self.memory_bank: torch.Tensor | None = None  # (M, C)
        self.projection: torch.Tensor | None = None  # (C, k), used for coreset selection
        self.info: dict[str, Any] = {}

    @property
    def normalization(self) -> tuple[Sequence[float], Sequence[float]]:
        return self._mean_std

    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) normalised images -> (B, C, h, w) patch embeddings."""
        return local_aggregate(self.extractor(batch))

    def _patch_grid(self) -> tuple[int, int]:
        """(h, w) of the embedding of one network input."""
        probe = torch.zeros(1, 3, self.input_size, self.input_size, device=self.device)
        return tuple(int(d) for d in self.embed(probe).shape[-2:])  # type: ignore[return-value]

    def _embedded_batches(self, images: Sequence[np.ndarray], desc: str) -> Iterator[torch.Tensor]:
        """Patch embeddings of the training images, batch by batch: (B*h*w, C) rows in image order."""
        n_batches = self._n_batches(len(images))
        batches = tqdm(
            self._batches(images), total=n_batches, desc=desc, disable=n_batches < PROGRESS_MIN_BATCHES, leave=False
        )
        for batch in batches:
            emb = self.embed(batch)  # (B, C, h, w)
            yield emb.permute(0, 2, 3, 1).reshape(-1, emb.shape[1])  # (B*h*w, C)

    @torch.no_grad()
    def _fit(self, images: Sequence[np.ndarray]) -> None:
        h, w = self._patch_grid()
        n_patches = len(images) * h * w
        if n_patches * self.embedding_dim * 4 <= EXACT_BANK_BYTES:
            bank = self._whole_bank(images)
        else:
            bank = self._streamed_bank(images, n_patches)
        self.memory_bank = bank.contiguous()
        self.info = {
            "n_train_images": len(images),
            "n_patches": n_patches,
            "feature_size": [h, w],
            "memory_bank_size": int(bank.shape[0]),
            "backbone_sha256": weights_sha256(self.config.backbone, self.config.weights),
        }

    def _coreset_size(self, n_patches: int) -> int:
        return max(1, int(n_patches * self.config.coreset_ratio))

    def _whole_bank(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """Every patch embedding in one (N, C) tensor, shrunk by coreset selection -> (M, C)."""
        bank = torch.cat(list(self._embedded_batches(images, "patchcore features")))  # (N, C)
        self.projection = sparse_random_projection(bank.shape[1], bank.shape[0], self._generator("projection"))
        if self.config.coreset_ratio < 1.0:
            projected = bank @ self.projection.to(bank.device)  # (N, k)
            keep_rows = greedy_coreset(projected, self._coreset_size(bank.shape[0]), self._generator("coreset"))
            del projected
            bank = bank.index_select(0, keep_rows)  # (M, C)
        return bank

    def _streamed_bank(self, images: Sequence[np.ndarray], n_patches: int) -> torch.Tensor:
        """The coreset without ever holding the (N, C) bank: choose on (N, k) projections, then gather -> (M, C)."""
        self.projection = sparse_random_projection(self.embedding_dim, n_patches, self._generator("projection"))
        if self.config.coreset_ratio >= 1.0:  # no selection: the bank is every patch (the model's own state)
            return torch.cat(list(self._embedded_batches(images, "patchcore features")))
        projection = self.projection.to(self.device)
        projected = torch.empty(n_patches, projection.shape[1], device=self.device)  # (N, k)
        start = 0
        for rows in self._embedded_batches(images, "patchcore projection"):
            projected[start : start + rows.shape[0]] = rows @ projection
            start += rows.shape[0]
        keep_rows = greedy_coreset(projected, self._coreset_size(n_patches), self._generator("coreset"))  # (M,)
        del projected
        bank = torch.empty(len(keep_rows), self.embedding_dim, device=self.device)  # (M, C)
        by_row = torch.argsort(keep_rows)  # positions in the bank, ordered by patch index
        sorted_rows = keep_rows[by_row]
        start, done = 0, 0
        for rows in self._embedded_batches(images, "patchcore gather"):
            end = start + rows.shape[0]
            stop = done + int(torch.searchsorted(sorted_rows[done:], end))
            bank[by_row[done:stop]] = rows.index_select(0, sorted_rows[done:stop] - start)
            start, done = end, stop
        return bank

    def _anomaly_maps(self, batch: torch.Tensor) -> torch.Tensor:
        assert self.memory_bank is not None  # the base class checks fitted
        emb = self.embed(batch)  # (B, C, h, w)
        b, c, h, w = emb.shape
        queries = emb.permute(0, 2, 3, 1).reshape(-1, c)  # (B*h*w, C)
        return nearest_distances(queries, self.memory_bank).view(b, h, w)  # (B, h, w)

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        assert self.memory_bank is not None and self.projection is not None
        return {"memory_bank": self.memory_bank, "projection": self.projection}

    def _state_extra(self) -> dict[str, Any]:
        return dict(self.info)

    def _load_state(self, tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
        missing = {"memory_bank", "projection"} - set(tensors)
        if missing:
            raise ValueError(f"{self.name}: saved state lacks tensors {sorted(missing)}")
        bank = tensors["memory_bank"]
        if bank.ndim != 2 or bank.shape[1] != self.embedding_dim:
            raise ValueError(
                f"{self.name}: memory bank of shape {tuple(bank.shape)} does not fit backbone "
                f"{self.config.backbone} layers {self.config.layers} ({self.embedding_dim} channels)"
            )
        warn_if_weights_changed(self.name, self.config.backbone, self.config.weights, extra.get("backbone_sha256"))
        self.memory_bank = bank.to(self.device).contiguous()
        self.projection = tensors["projection"].to(self.device)
        self.info = dict(extra)
