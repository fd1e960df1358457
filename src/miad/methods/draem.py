"""DRAEM (Zavrtanik et al., ICCV 2021) as the authors' code trains it, with the paper's Appendix 6.4 settings.

Training: each normal image (scaled to [0, 1], no ImageNet normalisation, as the original) gets a simulated
anomaly half of the time (`draem_augment`: Perlin-noise mask filled with an augmented texture). The
reconstructive sub-network restores the clean image (L2 + SSIM loss); the discriminative U-Net sees the
reconstruction and the input side by side (6 channels) and segments the simulated anomaly (focal loss).
Total loss l2 + ssim + focal, Adam on both sub-networks, lr multiplied by `lr_gamma` after each epoch in
`lr_milestones` (paper: 1e-4, x0.2 after 560 and 630 of 700 epochs, batch 8, 256 px).

Inference: the anomaly map is the softmax probability of the "anomalous" class, (B, S, S) at the input
resolution. The original scores an image by the max of that map after a 21x21 average pooling; the paper
scores every method by the max of its map, and so do we: the base class upsamples the map to the image size,
blurs it (Gaussian, sigma 4, the same for every method) and takes the max.

Details the appendix does not give, taken from the original code: the normal image is rotated with
probability 0.3 (the appendix's (-45, 45) range); batches draw their images at random with replacement (the
original's `__getitem__` ignores its index), `len(images)` samples per epoch, the last batch smaller; weights
initialised by the original's `weights_init`; SSIM data range read off the reconstruction; the focal loss's
gradient reaches the reconstructive sub-network through the concatenation (not detached, as the original).
The Perlin grid exponent is drawn from [perlin_scale_min, perlin_scale_max), the original's `randint(0, 6)`:
at 256 px the finest cells are 8 px; for smaller inputs lower `perlin_scale_max` to keep that relative size.

Deviations: DTD (the original's anomaly source) is not available; the asset library's train-pool textures
stand in (see `draem_augment`). imgaug is replaced by numpy/OpenCV/PIL re-implementations. A lone last
sample of an epoch is joined by one more random draw (BatchNorm cannot train on one value per channel).
The input side must be a multiple of 32 (five 2x2 poolings in the U-Net with skip connections). The original
reads BGR with OpenCV; we feed RGB in training and testing alike. On an accelerator the samples of a batch are
simulated in threads (the original used 16 DataLoader workers); every sample has its own generator, derived
from the seed, epoch, step and position, so the result does not depend on the thread count.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from miad.config import DraemConfig
from miad.methods.base import AnomalyMethod, to_batch
from miad.methods.draem_augment import AnomalySimulator, find_anomaly_sources
from miad.methods.draem_model import (
    DISC_DOWNSAMPLINGS,
    DiscriminativeSubNetwork,
    ReconstructiveSubNetwork,
    focal_loss,
    init_weights,
    ssim_loss,
)
from miad.methods.portable import adam
from miad.seeding import rng_for

UNIT_NORMALIZATION = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # the original only scales pixels to [0, 1]
PROGRESS_MIN_STEPS = 100  # show a progress bar from this many optimiser steps on
SIDE_MULTIPLE = 2**DISC_DOWNSAMPLINGS
MAX_SIMULATION_THREADS = 8  # threads simulating anomalies while an accelerator trains (the original: 16 workers)


class Draem(AnomalyMethod):
    """Reconstructive + discriminative sub-networks trained on simulated anomalies; map = P(anomalous)."""

    name: ClassVar[str] = "draem"
    config_class: ClassVar[type] = DraemConfig
    config: DraemConfig

    def __init__(self, config: DraemConfig, seed: int, device: str = "cpu") -> None:
        super().__init__(config, seed, device)
        if config.image_size % SIDE_MULTIPLE:
            raise ValueError(f"draem: image_size must be a multiple of {SIDE_MULTIPLE}, got {config.image_size}")
        if config.perlin_scale_min >= config.perlin_scale_max:
            raise ValueError(
                f"draem: perlin_scale_min ({config.perlin_scale_min}) must be below perlin_scale_max "
                f"({config.perlin_scale_max}); the grid exponent is drawn from [min, max) as in the original"
            )
        self.reconstructive: ReconstructiveSubNetwork | None = None
        self.discriminative: DiscriminativeSubNetwork | None = None
        self.info: dict[str, Any] = {}
        self._pool: ThreadPoolExecutor | None = None

    @property
    def normalization(self) -> tuple[Sequence[float], Sequence[float]]:
        return UNIT_NORMALIZATION

    def _build(self) -> None:
        """Fresh sub-networks; under `fit` the base class has seeded torch's global RNG just before."""
        self.reconstructive = ReconstructiveSubNetwork(3, 3, self.config.reconstructive_channels).to(self.device)
        self.discriminative = DiscriminativeSubNetwork(6, 2, self.config.discriminative_channels).to(self.device)

    def _resized(self, image: np.ndarray) -> np.ndarray:
        """uint8 image -> float32 (S, S, 3) in [0, 1], resized exactly as predict resizes."""
        mean, std = self.normalization
        return to_batch([image], self.input_size, mean, std, "cpu")[0].permute(1, 2, 0).numpy()  # (S, S, 3)

    def _epoch_draws(self, epoch: int, n_images: int) -> list[np.ndarray]:
        """Image indices of each batch of `epoch`: random with replacement, a lone last sample gets a partner."""
        rng = rng_for(self.seed, self.name, "epoch", epoch)
        draws = rng.integers(0, n_images, size=n_images)
        if self.batch_size > 1 and n_images % self.batch_size == 1:
            draws = np.append(draws, rng.integers(0, n_images))
        return [draws[i : i + self.batch_size] for i in range(0, len(draws), self.batch_size)]

    def _training_batch(
        self, images: Sequence[np.ndarray], draws: np.ndarray, simulator: AnomalySimulator, epoch: int, step: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(clean, augmented, mask) tensors (B, 3, S, S), (B, 3, S, S), (B, 1, S, S) for one batch."""

        def sample(position: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            rng = rng_for(self.seed, self.name, "sample", epoch, step, position)  # one generator per sample
            return simulator(self._resized(images[int(draws[position])]), rng)

        positions = range(len(draws))
        samples = list(self._pool.map(sample, positions) if self._pool is not None else map(sample, positions))
        clean, augmented, mask = (np.stack(parts) for parts in zip(*samples, strict=True))  # (B, S, S[, 3])

        def to_tensor(array: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous().to(self.device)  # (B, C, S, S)

        return to_tensor(clean), to_tensor(augmented), to_tensor(mask[..., None])

    def _fit(self, images: Sequence[np.ndarray]) -> None:
        # On an accelerator, simulate the samples of a batch in threads (each has its own generator, so the
        # result is the same); on the CPU, torch already uses every core.
        threads = 1 if self.device.startswith("cpu") else min(MAX_SIMULATION_THREADS, os.cpu_count() or 1)
        self._pool = ThreadPoolExecutor(threads) if threads > 1 else None
        try:
            self._train(images)
        finally:
            if self._pool is not None:
                self._pool.shutdown()
            self._pool = None

    def _train(self, images: Sequence[np.ndarray]) -> None:
        cfg = self.config
        sources = find_anomaly_sources(cfg.anomaly_source)  # fail before any work if the textures are missing
        # max_train_images: the base class has already drawn the seeded subset
        simulator = AnomalySimulator(
            sources,
            cfg.image_size,
            augmentations_per_image=cfg.augmentations_per_image,
            rotation_degrees=cfg.rotation_degrees,
            perlin_scale_min=cfg.perlin_scale_min,
            perlin_scale_max=cfg.perlin_scale_max,
        )
        self._build()
        assert self.reconstructive is not None and self.discriminative is not None
        init_weights(self.reconstructive)
        init_weights(self.discriminative)
        self.reconstructive.train()
        self.discriminative.train()
        optimizer = adam(
            [
                {"params": self.reconstructive.parameters(), "lr": cfg.lr},
                {"params": self.discriminative.parameters(), "lr": cfg.lr},
            ]
        )
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(cfg.lr_milestones), gamma=cfg.lr_gamma)
        steps_per_epoch = len(self._epoch_draws(0, len(images)))
        losses = {"l2": 0.0, "ssim": 0.0, "focal": 0.0}
        progress = tqdm(
            range(cfg.epochs),
            desc="draem",
            disable=cfg.epochs * steps_per_epoch < PROGRESS_MIN_STEPS,
            leave=False,
        )
        for epoch in progress:
            totals = dict.fromkeys(losses, 0.0)
            batches = self._epoch_draws(epoch, len(images))
            for step, draws in enumerate(batches):
                clean, augmented, mask = self._training_batch(images, draws, simulator, epoch, step)
                reconstruction = self.reconstructive(augmented)  # (B, 3, S, S)
                logits = self.discriminative(torch.cat((reconstruction, augmented), dim=1))  # (B, 2, S, S)
                parts = {
                    "l2": F.mse_loss(reconstruction, clean),
                    "ssim": ssim_loss(reconstruction, clean),
                    "focal": focal_loss(torch.softmax(logits, dim=1), mask),
                }
                loss = parts["l2"] + parts["ssim"] + parts["focal"]
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                for key, value in parts.items():
                    totals[key] += value.item() / len(batches)
            scheduler.step()
            losses = totals
            progress.set_postfix(loss=f"{sum(losses.values()):.4f}", focal=f"{losses['focal']:.4f}")
        self.reconstructive.eval()
        self.discriminative.eval()
        self.info = {
            "n_train_images": len(images),
            "n_anomaly_sources": len(sources),
            "anomaly_source": str(cfg.anomaly_source),
            "final_losses": {k: round(v, 6) for k, v in losses.items()},
        }

    def _anomaly_maps(self, batch: torch.Tensor) -> torch.Tensor:
        assert self.reconstructive is not None and self.discriminative is not None  # the base class checks fitted
        self.reconstructive.eval()
        self.discriminative.eval()
        reconstruction = self.reconstructive(batch)  # (B, 3, S, S)
        logits = self.discriminative(torch.cat((reconstruction, batch), dim=1))  # (B, 2, S, S)
        return torch.softmax(logits, dim=1)[:, 1]  # (B, S, S)

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        assert self.reconstructive is not None and self.discriminative is not None
        tensors = {f"reconstructive.{k}": v for k, v in self.reconstructive.state_dict().items()}
        tensors.update({f"discriminative.{k}": v for k, v in self.discriminative.state_dict().items()})
        return tensors

    def _state_extra(self) -> dict[str, Any]:
        return dict(self.info)

    def _load_state(self, tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
        self._build()
        assert self.reconstructive is not None and self.discriminative is not None
        for prefix, network in (("reconstructive.", self.reconstructive), ("discriminative.", self.discriminative)):
            state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            try:
                network.load_state_dict(state, strict=True)
            except RuntimeError as exc:
                raise ValueError(
                    f"{self.name}: saved {prefix.rstrip('.')} weights do not fit the config "
                    f"(reconstructive_channels={self.config.reconstructive_channels}, "
                    f"discriminative_channels={self.config.discriminative_channels}): {exc}"
                ) from None
            network.eval()
        self.info = dict(extra)
