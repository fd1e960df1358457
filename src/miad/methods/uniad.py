"""UniAD (You et al., NeurIPS 2022): one feature-reconstruction transformer for all scenarios (Appendix 6.6).

Training: a frozen ImageNet backbone's feature maps at `config.layers` are resized to
`feature_size` x `feature_size` and concatenated (the original's MFCN neck; stages 1-4 of
EfficientNet-b4 give 272 channels at stride 16); a neighbour-masked transformer with layer-wise
queries (`uniad_model.UniADReconstruction`) learns to reconstruct them from jittered copies (feature
jitter, scale 20, on every batch) under the MSE loss (the original's FeatureMSELoss). AdamW, the
lr multiplied by `lr_gamma` every `lr_drop_epoch` epochs (StepLR), all as Appendix 6.6. The model
is unified: `fit` receives the images of every scenario mixed, and nothing is class-specific.
Inference: the anomaly map is each position's L2 norm over channels of (reconstruction - feature),
at `feature_size` resolution; the base class upsamples and blurs it and takes its max.

From the original code (github.com/zhiyuanyou/UniAD, `experiments/MVTec-AD/config.yaml`), as the
appendix says "other settings are consistent with the original code": learned position embedding,
dropout 0.1, ReLU, post-norm, neighbour mask 7x7 in all three attentions, xavier-uniform init,
gradient clipping at norm 0.1, AdamW betas (0.9, 0.999), epoch-wise shuffling, no augmentation.

Deviations:
- The backbone comes from timm (`features_only`); the original used lukemelas' EfficientNet-PyTorch
  port of the TF weights (timm's `tf_efficientnet_b4` is that architecture, `efficientnet_b4` is
  timm's own training). `layers` are timm out_indices: the original's stages 1-4 (24+32+56+160 =
  272 channels on b4) are (0, 1, 2, 3); (1, 2, 3, 4) would give 32+56+160+448 = 696 channels.
- One process with batch `batch_size`; the original ran 8 GPUs x 8 images (DDP averages the
  per-GPU mean losses, which for equal shards is the same gradient). Only the learned position
  embedding (the original configs' choice) is implemented, not the sine one.
- Smoke/CPU profiles only shrink hyperparameters in params.yaml (input size, feature_size,
  widths, depths, neighbour mask, epochs, lr); the code path is the paper's.
- Backbone features are computed once and cached (on `device`, when they fit in
  FEATURE_CACHE_MAX_BYTES): the backbone is frozen in eval mode and there is no augmentation, so
  this equals recomputing them every epoch, only faster.
- The original scores an image by the max of its 16x16-average-pooled map and upsamples the map
  bilinearly with align_corners=True; here, as for every method, the base class's shared
  upsampling + Gaussian blur and max-of-map rule apply.
- The lr drops after `lr_drop_epoch` epochs exactly (standard StepLR); the original calls
  `step(epoch)`, which drops it one epoch later.
- Random numbers: jitter noise and the shuffle order come from generators derived from the seed;
  parameter init and dropout from torch's global generator, which the base class seeds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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
from miad.config import UniADConfig
from miad.methods.base import AnomalyMethod, to_batch
from miad.methods.portable import adam
from miad.methods.uniad_model import UniADReconstruction, align_features, feature_jitter
from miad.seeding import derive_seed, rng_for, torch_seed

DROPOUT = 0.1  # original config `dropout: 0.1` (no field in UniADConfig)
MASKED_ATTENTIONS = (True, True, True)  # original config `neighbor_mask.mask`: [encoder, decoder 1, decoder 2]
CLIP_MAX_NORM = 0.1  # original config `trainer.clip_max_norm`
ADAM_BETAS = (0.9, 0.999)  # original config `optimizer.kwargs.betas`
FEATURE_CACHE_MAX_BYTES = 16 * 2**30  # cache backbone features up to this size, else recompute per batch
PROGRESS_MIN_STEPS = 200  # show an epoch progress bar from this many optimiser steps on
PROGRESS_MIN_BATCHES = 10  # ... and a feature-extraction bar from this many batches on
FLOAT32_BYTES = 4
STATE_PREFIX = "reconstruction."  # key prefix of the network's tensors in model.safetensors


class UniAD(AnomalyMethod):
    """Unified multi-class anomaly detection by neighbour-masked transformer feature reconstruction."""

    name: ClassVar[str] = "uniad"
    config_class: ClassVar[type] = UniADConfig
    config: UniADConfig

    def __init__(self, config: UniADConfig, seed: int, device: str = "cpu") -> None:
        super().__init__(config, seed, device)
        with torch.random.fork_rng(devices=[]):  # building draws init weights; leave the caller's RNG alone
            self.extractor = create_feature_extractor(config.backbone, config.weights, config.layers).to(device)
            self.channels = sum(feature_channels(self.extractor))
            self.network = self._build_network()  # checks the config early; `fit` rebuilds it from the seeded RNG
        self._mean_std = normalization(config.backbone)
        self.info: dict[str, Any] = {}

    @property
    def normalization(self) -> tuple[Sequence[float], Sequence[float]]:
        return self._mean_std

    def _build_network(self) -> UniADReconstruction:
        c = self.config
        return UniADReconstruction(
            channels=self.channels,
            size=c.feature_size,
            hidden_dim=c.hidden_dim,
            num_encoder_layers=c.num_encoder_layers,
            num_decoder_layers=c.num_decoder_layers,
            num_heads=c.num_heads,
            feedforward_dim=c.feedforward_dim,
            neighborhood=c.neighbor_mask,
            dropout=DROPOUT,
            masked=MASKED_ATTENTIONS,
        ).to(self.device)

    @torch.no_grad()
    def features(self, batch: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) normalised images -> (B, C, s, s) aligned backbone features (s = feature_size)."""
        return align_features(self.extractor(batch), self.config.feature_size)

    def _train_features(self, images: Sequence[np.ndarray]) -> torch.Tensor | None:
        """All training features (N, C, s, s) in image order, or None when they exceed the cache budget."""
        s = self.config.feature_size
        if len(images) * self.channels * s * s * FLOAT32_BYTES > FEATURE_CACHE_MAX_BYTES:
            return None
        cache = torch.empty(len(images), self.channels, s, s, device=self.device)  # (N, C, s, s)
        n_batches = self._n_batches(len(images))
        batches = tqdm(
            self._batches(images),
            desc="uniad features",
            total=n_batches,
            disable=n_batches < PROGRESS_MIN_BATCHES,
            leave=False,
        )
        for i, batch in enumerate(batches):
            cache[i * self.batch_size : (i + 1) * self.batch_size] = self.features(batch)
        return cache

    def _fit(self, images: Sequence[np.ndarray]) -> None:
        c = self.config
        self.network = self._build_network()  # parameter init from the global generator the base class seeded
        cache = self._train_features(images)
        mean, std = self.normalization
        optimizer = adam(
            self.network.parameters(),
            lr=c.lr,
            betas=ADAM_BETAS,
            weight_decay=c.weight_decay,
            decoupled_weight_decay=True,
        )
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=c.lr_drop_epoch, gamma=c.lr_gamma)
        order_rng = rng_for(self.seed, self.name, "shuffle")
        jitter_gen = torch.Generator(device=self.device).manual_seed(
            torch_seed(derive_seed(self.seed, self.name, "jitter"))
        )
        n_batches = self._n_batches(len(images))
        self.network.train()
        epoch_loss = math.inf
        bar = tqdm(range(c.epochs), desc="uniad", disable=c.epochs * n_batches < PROGRESS_MIN_STEPS, leave=False)
        for _ in bar:
            order = order_rng.permutation(len(images))
            total = 0.0
            for start in range(0, len(images), c.batch_size):
                idx = order[start : start + c.batch_size]
                if cache is not None:
                    target = cache[torch.from_numpy(idx).to(cache.device)]  # (B, C, s, s)
                else:
                    target = self.features(to_batch([images[i] for i in idx], c.image_size, mean, std, self.device))
                noisy = feature_jitter(target, c.jitter_scale, c.jitter_prob, jitter_gen) if c.jitter_scale else target
                loss = F.mse_loss(self.network(noisy), target)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.network.parameters(), CLIP_MAX_NORM)
                optimizer.step()
                total += float(loss.detach()) * len(idx)
            scheduler.step()
            epoch_loss = total / len(images)
            if not math.isfinite(epoch_loss):
                raise RuntimeError(f"{self.name}: training diverged (loss {epoch_loss}); lower train.uniad.lr")
            bar.set_postfix(loss=f"{epoch_loss:.4g}")
        self.network.eval()
        self.info = {
            "n_train_images": len(images),
            "feature_channels": self.channels,
            "feature_cache": cache is not None,
            "final_epoch_loss": epoch_loss,
            "backbone_sha256": weights_sha256(c.backbone, c.weights),
        }

    def _anomaly_maps(self, batch: torch.Tensor) -> torch.Tensor:
        self.network.eval()
        target = self.features(batch)  # (B, C, s, s)
        rec = self.network(target)  # (B, C, s, s)
        return torch.linalg.vector_norm(rec - target, dim=1)  # (B, s, s)

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {STATE_PREFIX + k: v for k, v in self.network.state_dict().items()}

    def _state_extra(self) -> dict[str, Any]:
        return dict(self.info)

    def _load_state(self, tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
        state = {k.removeprefix(STATE_PREFIX): v for k, v in tensors.items() if k.startswith(STATE_PREFIX)}
        expected = {k: tuple(v.shape) for k, v in self.network.state_dict().items()}
        got = {k: tuple(v.shape) for k, v in state.items()}
        if got != expected or len(state) != len(tensors):
            wrong = sorted(k for k in expected.keys() | got.keys() if expected.get(k) != got.get(k))
            raise ValueError(
                f"{self.name}: saved tensors do not fit the network of this config "
                f"({self.channels} feature channels, feature_size {self.config.feature_size}); "
                f"mismatching keys: {wrong[:5]}"
            )
        warn_if_weights_changed(self.name, self.config.backbone, self.config.weights, extra.get("backbone_sha256"))
        self.network.load_state_dict(state, strict=True)
        self.network.eval()
        self.info = dict(extra)
