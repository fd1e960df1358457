"""Reverse Distillation (Deng & Li, CVPR 2022) as anomalib implements it, which the paper used (Appendix 6.1).

A frozen ImageNet teacher E (timm features at `config.layers`: three scales at strides r, 2r, 4r)
feeds a trainable one-class bottleneck embedding (OCBE), whose output a trainable student decoder D
expands back into three maps shaped like the teacher's (`reverse_distillation_model`). Training
minimises, per scale, 1 - cosine similarity between teacher and student maps; at test time the
per-position cosine distance of each scale, resized to the input size and summed, is the anomaly map.

Appendix 6.1: 256 px inputs, no augmentation, WideResNet50 teacher, Adam(lr 0.005, betas 0.5/0.999),
batch 32 (anomalib itself uses betas 0.5/0.99; the appendix's 0.999 is also the authors' value). Where
the appendix is silent we follow anomalib (paper: "consistent with the default configuration in Anomalib"):
- epochs: 200, anomalib's `max_epochs` (the paper does not state it); no early stopping (anomalib's is
  commented out by default, and it would need anomalous validation images);
- loss flattened per image and scale (anomalib's `ReverseDistillationLoss` = the authors' code);
- anomaly map mode ADD (anomalib 1.x's default; anomalib 0.x's config.yaml set MULTIPLY);
- OCE blocks at width_per_group 64 (anomalib; the authors' code uses 128 for wide_resnet50_2);
- teacher layers (1, 2, 3) = WRN50-2 layer1-3; teacher always in eval mode, OCBE + decoder in train
  mode while fitting and in eval mode (BatchNorm running statistics) for prediction;
- training batches reshuffled every epoch (anomalib's shuffling train loader), last partial batch kept.

Implementation choice, same result up to float rounding: the frozen teacher sees no augmentation, so
its maps are computed once and kept (up to `FEATURE_CACHE_BYTES`, else recomputed every epoch); this
halves the CPU training time. Every `fit` starts from a freshly initialised student.

Deviations: the anomaly map is not blurred here, since the base class upsamples and blurs (sigma 4)
every method's map at the output resolution (anomalib blurs at the input size); the OCBE's unused
`conv4`/`bn4` are not built. A trailing one-image batch is skipped only when the embedding is 1x1 (tiny
inputs), where BatchNorm cannot train on one value. On CPU/smoke configs the teacher is the small
tf_efficientnet_lite0 (layers (1, 2, 3): 24/40/112 channels at strides 4/8/16) and the OCBE and
decoder are built from its feature_info with the same recipe (see the model module): a stand-in, not
the paper's network.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from tqdm import tqdm

from miad.backbones import (
    create_feature_extractor,
    feature_channels,
    feature_reductions,
    normalization,
    warn_if_weights_changed,
    weights_sha256,
)
from miad.config import ReverseDistillationConfig
from miad.methods.base import AnomalyMethod, to_batch
from miad.methods.portable import adam
from miad.methods.reverse_distillation_model import (
    N_SCALES,
    ReverseDistillationStudent,
    anomaly_map,
    reverse_distillation_loss,
)

STATE_PREFIX = "student."  # key prefix of the trained weights in model.safetensors
FEATURE_CACHE_BYTES = 2**31  # keep all teacher maps in memory up to this size, else recompute them every epoch
PROGRESS_MIN_STEPS = 50  # show the epoch progress bar from this many optimiser steps on


class ReverseDistillation(AnomalyMethod):
    """Teacher-student feature reconstruction through a one-class bottleneck; anomaly = cosine distance."""

    name: ClassVar[str] = "rd"
    config_class: ClassVar[type] = ReverseDistillationConfig
    config: ReverseDistillationConfig

    def __init__(self, config: ReverseDistillationConfig, seed: int, device: str = "cpu") -> None:
        super().__init__(config, seed, device)
        if len(config.layers) != N_SCALES:
            raise ValueError(f"{self.name}: layers must name {N_SCALES} teacher feature maps, got {config.layers}")
        self.teacher = create_feature_extractor(config.backbone, config.weights, config.layers).to(device)
        self.channels = feature_channels(self.teacher)
        self.reductions = reductions = feature_reductions(self.teacher)
        if any(b != 2 * a for a, b in itertools.pairwise(reductions)):
            raise ValueError(
                f"{self.name}: layers {config.layers} of {config.backbone} have strides {reductions}; "
                "reverse distillation needs three consecutive scales (strides r, 2r, 4r)"
            )
        multiple = 2 * reductions[-1]  # the OCE halves the deepest map and the decoder doubles it back
        if config.image_size % multiple:
            raise ValueError(
                f"{self.name}: image_size {config.image_size} must be a multiple of {multiple} "
                f"for layers {config.layers} of {config.backbone}"
            )
        self.embedding_side = config.image_size // multiple
        self.student = ReverseDistillationStudent(self.channels).to(device).eval()
        self._mean_std = normalization(config.backbone)
        self.info: dict[str, Any] = {}

    @property
    def normalization(self) -> tuple[Sequence[float], Sequence[float]]:
        return self._mean_std

    def _feature_bytes_per_image(self) -> int:
        """float32 bytes of one image's three teacher maps."""
        return 4 * sum(c * (self.input_size // r) ** 2 for c, r in zip(self.channels, self.reductions, strict=True))

    def _epoch_features(
        self, images: Sequence[np.ndarray], cached: list[torch.Tensor] | None, order: torch.Tensor
    ) -> Iterator[list[torch.Tensor]]:
        """Teacher maps of the images in `order`, `batch_size` images at a time: per scale (B, c_k, h_k, w_k)."""
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            if cached is not None:
                yield [f.index_select(0, idx.to(f.device)) for f in cached]
                continue
            mean, std = self.normalization
            batch = to_batch([images[i] for i in idx.tolist()], self.input_size, mean, std, self.device)
            with torch.no_grad():
                features = self.teacher(batch)
            yield features

    def _fit(self, images: Sequence[np.ndarray]) -> None:
        n_images, batch_size = len(images), self.batch_size
        skip_single = self.embedding_side == 1  # BatchNorm cannot train on a single 1x1 value
        if skip_single and (n_images == 1 or batch_size == 1):
            raise ValueError(
                f"{self.name}: image_size {self.input_size} gives a 1x1 embedding, so BatchNorm needs batches of "
                f"at least 2 images (got {n_images} images, batch_size {batch_size}); raise image_size"
            )
        cached = None
        if n_images * self._feature_bytes_per_image() <= FEATURE_CACHE_BYTES:
            with torch.no_grad():  # frozen teacher, no augmentation: its maps never change, compute them once
                parts = [self.teacher(batch) for batch in self._batches(images)]
            cached = [torch.cat(scale) for scale in zip(*parts, strict=True)]  # per scale (N, c_k, h_k, w_k)
            del parts

        # a fresh student, initialised from the torch seed that `fit` has just set
        self.student = ReverseDistillationStudent(self.channels).to(self.device)
        self.student.train()  # the teacher stays in eval mode: it is never switched
        optimizer = adam(self.student.parameters(), lr=self.config.lr, betas=(self.config.beta1, self.config.beta2))
        shuffle = self._generator("shuffle")
        n_steps = self.config.epochs * self._n_batches(n_images)
        losses: list[float] = []
        progress = tqdm(range(self.config.epochs), desc="rd epochs", disable=n_steps < PROGRESS_MIN_STEPS, leave=False)
        for _ in progress:
            order = torch.randperm(n_images, generator=shuffle)  # (N,)
            total, seen = 0.0, 0
            for teacher in self._epoch_features(images, cached, order):
                n_batch = teacher[0].shape[0]
                if skip_single and n_batch == 1:
                    continue
                loss = reverse_distillation_loss(teacher, self.student(teacher))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.item() * n_batch
                seen += n_batch
            losses.append(total / seen)
            progress.set_postfix(loss=f"{losses[-1]:.4f}")
        self.student.eval()
        if not math.isfinite(losses[-1]):
            raise FloatingPointError(f"{self.name}: training diverged (loss {losses[-1]})")
        self.info = {
            "n_train_images": n_images,
            "epochs": self.config.epochs,
            "final_loss": losses[-1],
            "epoch_losses": losses,
            "teacher_channels": list(self.channels),
            "backbone_sha256": weights_sha256(self.config.backbone, self.config.weights),
        }

    def _anomaly_maps(self, batch: torch.Tensor) -> torch.Tensor:
        teacher = self.teacher(batch)
        return anomaly_map(teacher, self.student(teacher), self.input_size)  # (B, S, S)

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {STATE_PREFIX + key: value for key, value in self.student.state_dict().items()}

    def _state_extra(self) -> dict[str, Any]:
        return dict(self.info)

    def _load_state(self, tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
        state = {k[len(STATE_PREFIX) :]: v for k, v in tensors.items() if k.startswith(STATE_PREFIX)}
        expected = {k: tuple(v.shape) for k, v in self.student.state_dict().items()}
        missing = sorted(set(expected) - set(state))
        wrong = sorted(k for k in expected.keys() & state.keys() if tuple(state[k].shape) != expected[k])
        unexpected = sorted(set(tensors) - {STATE_PREFIX + k for k in expected})
        if missing or wrong or unexpected:
            raise ValueError(
                f"{self.name}: saved student does not fit backbone {self.config.backbone} layers {self.config.layers}: "
                f"missing {missing[:5]}, wrong shapes {wrong[:5]}, unexpected {unexpected[:5]}"
            )
        warn_if_weights_changed(self.name, self.config.backbone, self.config.weights, extra.get("backbone_sha256"))
        self.student.load_state_dict(state, strict=True)
        self.student.eval()
        self.info = dict(extra)
