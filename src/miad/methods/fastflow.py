"""FastFlow (Yu et al. 2021): 2D normalizing flows on frozen backbone features (paper Appendix 6.3).

Network (as anomalib's `FastflowModel` for ResNet backbones, which follows the original): a frozen
ImageNet backbone returns the maps at `config.layers` (paper: wide_resnet50_2, "the last layer in the
first three blocks" = timm out_indices (1, 2, 3)); each map goes through a trainable LayerNorm over
(C, H, W) (elementwise affine, as anomalib/the original for ResNets) and its own 2D flow of
`flow_steps` FrEIA-style `AllInOneBlock` steps (`miad.methods.flows`): 3x3 and 1x1 subnets alternate
unless `conv3x3_only`, hidden channels = `hidden_ratio` x the subnet's input channels, soft clamp
`clamp`, fixed random permutations (`permute_soft=False`).

Training (anomalib `FastflowLoss`): minimise, summed over scales, the batch mean of
0.5 * sum(z^2) - log|det J|; Adam (lr 1e-3, weight decay 1e-5 as L2 in Adam, as anomalib) for
`epochs` epochs of shuffled batches, no augmentation (Appendix 6.3).

Anomaly map (anomalib `AnomalyMapGenerator`): per scale, -exp(-0.5 * mean_c z^2) upsampled bilinearly
to the network input size; the mean over scales. The base class then resizes it to the image and
blurs it like every method's map; the image score is its max, as anomalib's FastFlow.

Deviations and implementation choices:
- FrEIA is not available offline; its `AllInOneBlock` is re-implemented in `flows.py` (tested for
  invertibility and against an autograd Jacobian). Its soft clamp is FrEIA's `clamp * tanh(0.1 a)`.
- The backbone is frozen and there is no augmentation, so its features are computed once and reused
  every epoch when they fit in `FEATURE_CACHE_BYTES` (always at smoke sizes; the backbone dominates
  CPU time there); otherwise they are recomputed per batch, as anomalib does. Both are deterministic;
  they may differ in float rounding only (backbone batches are composed differently).
- The LayerNorm's affine parameters are trained with the flows but sit outside the log-det, so the NLL
  is unbounded below and goes negative on long runs (gathierry/FastFlow#3); kept, as in anomalib.
- The subnet keeps at least one hidden channel (anomalib's `int(c * hidden_ratio)` could give 0).
- Smoke profiles use `tf_efficientnet_lite0` (layers (1, 2, 3): strides 4, 8, 16) in place of
  wide_resnet50_2, whose ImageNet weights are not available offline; the paper profile uses the latter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from miad.backbones import create_feature_extractor, normalization, warn_if_weights_changed, weights_sha256
from miad.config import FastFlowConfig
from miad.methods.base import AnomalyMethod
from miad.methods.flows import Flow2d
from miad.methods.portable import adam

FEATURE_CACHE_BYTES = 2**30  # cache the frozen backbone's training features when they fit in 1 GiB
PROGRESS_MIN_STEPS = 200  # show the epoch progress bar from this many optimiser steps on


def nll_loss(hidden: Sequence[torch.Tensor], log_dets: Sequence[torch.Tensor]) -> torch.Tensor:
    """anomalib's FastflowLoss: sum over scales of mean_B(0.5 * sum_{C,H,W} z^2 - log|det J|)."""
    loss = torch.zeros((), device=hidden[0].device)
    for z, log_det in zip(hidden, log_dets, strict=True):
        loss = loss + torch.mean(0.5 * torch.sum(z**2, dim=(1, 2, 3)) - log_det)
    return loss


def anomaly_map(hidden: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
    """anomalib's AnomalyMapGenerator: mean over scales of upsampled -exp(-0.5 mean_C z^2) -> (B, *size)."""
    maps = []
    for z in hidden:
        log_prob = -0.5 * torch.mean(z**2, dim=1, keepdim=True)  # (B, 1, h, w)
        maps.append(F.interpolate(-torch.exp(log_prob), size=size, mode="bilinear", align_corners=False))
    return torch.stack(maps, dim=-1).mean(dim=-1)[:, 0]  # (B, H, W)


class FastFlowModel(nn.Module):
    """Trainable part of FastFlow: a LayerNorm and a 2D flow per feature scale."""

    def __init__(
        self,
        feature_shapes: Sequence[tuple[int, int, int]],
        config: FastFlowConfig,
        generator: torch.Generator,
    ) -> None:
        super().__init__()
        self.norms = nn.ModuleList(nn.LayerNorm(list(shape), elementwise_affine=True) for shape in feature_shapes)
        self.flows = nn.ModuleList(
            Flow2d(c, config.flow_steps, config.hidden_ratio, config.clamp, config.conv3x3_only, generator)
            for c, _, _ in feature_shapes
        )

    def forward(self, features: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Backbone maps [(B, C_i, H_i, W_i)] -> (latents z_i of the same shapes, log-dets [(B,)])."""
        hidden, log_dets = [], []
        for norm, flow, feature in zip(self.norms, self.flows, features, strict=True):
            z, log_det = flow(norm(feature))
            hidden.append(z)
            log_dets.append(log_det)
        return hidden, log_dets


class FastFlow(AnomalyMethod):
    """Normalizing flows map normal features to N(0, I); low likelihood marks an anomaly."""

    name: ClassVar[str] = "fastflow"
    config_class: ClassVar[type] = FastFlowConfig
    config: FastFlowConfig

    def __init__(self, config: FastFlowConfig, seed: int, device: str = "cpu") -> None:
        super().__init__(config, seed, device)
        self.extractor = create_feature_extractor(config.backbone, config.weights, config.layers).to(device)
        self._mean_std = normalization(config.backbone)
        with torch.no_grad():
            probe = torch.zeros(1, 3, config.image_size, config.image_size, device=device)
            self.feature_shapes = [tuple(int(d) for d in f.shape[1:]) for f in self.extractor(probe)]
        self.model: FastFlowModel | None = None
        self.info: dict[str, Any] = {}

    @property
    def normalization(self) -> tuple[Sequence[float], Sequence[float]]:
        return self._mean_std

    def _build_model(self) -> FastFlowModel:
        return FastFlowModel(self.feature_shapes, self.config, self._generator("permutations")).to(self.device)

    @torch.no_grad()
    def _features(self, batch: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, S, S) normalised images -> frozen backbone maps [(B, C_i, H_i, W_i)]."""
        return list(self.extractor(batch))

    def _fit(self, images: Sequence[np.ndarray]) -> None:
        n = len(images)
        model = self._build_model()  # conv init draws from the global RNG the base class seeded
        optimizer = adam(model.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay)
        feature_bytes = 4 * n * sum(math.prod(shape) for shape in self.feature_shapes)
        cached = feature_bytes <= FEATURE_CACHE_BYTES
        cache: list[torch.Tensor] = []
        if cached:
            per_batch = [self._features(batch) for batch in self._batches(images)]
            cache = [torch.cat(maps) for maps in zip(*per_batch, strict=True)]  # per scale (N, C_i, H_i, W_i)
            del per_batch
        shuffle = self._generator("shuffle")
        n_batches = self._n_batches(n)
        model.train()
        loss_value = math.nan
        bar = tqdm(
            range(self.config.epochs),
            desc="fastflow",
            disable=self.config.epochs * n_batches < PROGRESS_MIN_STEPS,
            leave=False,
        )
        for _ in bar:
            order = torch.randperm(n, generator=shuffle)
            if cached:
                batches = (
                    [f[order[i : i + self.batch_size].to(f.device)] for f in cache]
                    for i in range(0, n, self.batch_size)
                )
            else:
                batches = (self._features(b) for b in self._batches(images, order.tolist()))
            total = 0.0
            for features in batches:
                loss = nll_loss(*model(features))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach())
            loss_value = total / n_batches
            bar.set_postfix(loss=f"{loss_value:.4g}")
        model.eval()
        self.model = model
        self.info = {
            "n_train_images": n,
            "feature_shapes": [list(shape) for shape in self.feature_shapes],
            "features_cached": cached,
            "final_epoch_loss": loss_value if math.isfinite(loss_value) else None,
            "backbone_sha256": weights_sha256(self.config.backbone, self.config.weights),
        }

    def _anomaly_maps(self, batch: torch.Tensor) -> torch.Tensor:
        assert self.model is not None  # the base class checks fitted
        hidden, _ = self.model(self._features(batch))
        return anomaly_map(hidden, (self.input_size, self.input_size))  # (B, S, S)

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        assert self.model is not None
        return dict(self.model.state_dict())

    def _state_extra(self) -> dict[str, Any]:
        return dict(self.info)

    def _load_state(self, tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
        model = self._build_model()
        try:
            model.load_state_dict(tensors, strict=True)
        except RuntimeError as exc:
            raise ValueError(
                f"{self.name}: saved state does not fit backbone {self.config.backbone} layers {self.config.layers} "
                f"at {self.config.image_size} px with this config: {exc}"
            ) from exc
        warn_if_weights_changed(self.name, self.config.backbone, self.config.weights, extra.get("backbone_sha256"))
        self.model = model.eval()
        self.info = dict(extra)
