"""L2 autoencoder (Bergmann et al. 2019, MVTec AD) with a modified U-Net, as in the paper's Appendix 6.5.

Training: the network reconstructs defect-free images normalised with mean 0.5 / std 0.5 (inputs in
[-1, 1]; a tanh output matches that range) under a per-pixel L2 loss (MSE, averaged over pixels and
channels as `nn.MSELoss` does), with Adam and Adam's own L2 weight decay (`torch.optim.Adam(weight_decay=...)`),
shuffled mini-batches, no augmentation.
Inference: the anomaly map is the squared L2 norm of each pixel's residual, ||x - x_hat||^2 summed over
the RGB channels, at the network resolution (Bergmann et al.'s residual map); the base class upsamples,
blurs and takes the max as the image score.

Network (`UNetAutoencoder`): a U-Net shape, `depth` stages of conv4x4/stride-2 downsampling (Bergmann's
4x4 stride-2 convolutions) and transposed-conv4x4/stride-2 upsampling, each followed by a
conv3x3-BN-LeakyReLU(0.2) block; `base_channels` at full resolution, doubling per stage.
The "modification" (the appendix does not say which; this is our choice): a U-Net's skip connections let
the decoder copy its input, so the network learns the identity and reconstructs defects too, which makes
the residual map useless. Hence
- no skip connection at the top `SKIP_FREE_LEVELS` (= 2) levels, full and half resolution: fine detail
  has to pass the bottleneck;
- the remaining (deeper) skips are each squeezed by a 1x1 convolution to `SKIP_CHANNELS` channels;
- the bottleneck itself is a linear 1x1 convolution to `LATENT_CHANNELS` channels (a spatial code of
  LATENT_CHANNELS x (S / 2^depth)^2 values, in place of Bergmann's 100-d dense code), so the code is
  undercomplete even though the widest stage has base_channels * 2^depth channels. At the paper's
  256 px and depth 4, code and skips hold 4,096 + 16,384 + 4,096 values per image, 8x fewer than the input.
Measured on the learn test's data (tests/test_methods.py, its "ae" config): the mean residual inside the
blobs is 1.32 with this design (20x the background's 0.066: the blob is not reconstructed), but 0.050
with 4-channel skips at every level including full resolution (the blob is copied through; only 4x the
background's 0.010).

Details the appendix leaves open, taken from the usual PyTorch training loop: a fresh random order per
epoch, the last partial batch kept (DataLoader's drop_last=False), PyTorch's default initialisation,
weight decay applied to every parameter. Training images are resized to uint8 at the network
resolution (as a torchvision Resize on PIL images does) and normalised per batch; the resized images
are kept for later epochs while they fit in `RESIZED_CACHE_BYTES`, else read and resized again each
epoch (each image is resized on its own, so both give the same bits).
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

from miad.config import AutoencoderConfig
from miad.methods.base import AnomalyMethod, to_batch
from miad.methods.portable import adam
from miad.seeding import derive_seed, torch_seed

NORMALIZATION = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # appendix 6.5: inputs scaled to [-1, 1]
LEAKY_SLOPE = 0.2  # Bergmann et al.'s LeakyReLU slope
LATENT_CHANNELS = 16  # channels of the spatial code at the bottleneck
SKIP_CHANNELS = 4  # channels each remaining skip connection is squeezed to
SKIP_FREE_LEVELS = 2  # levels from full resolution down that get no skip connection
MIN_BOTTLENECK_SIDE = 2  # smallest side of the code, px: BatchNorm needs > 1 value per channel at batch size 1
PROGRESS_MIN_STEPS = 200  # show the epoch progress bar from this many optimiser steps on
STATE_PREFIX = "net."
RESIZED_CACHE_BYTES = 2**30  # keep the resized uint8 training images between epochs up to this size


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    """conv3x3 (same padding) - BN - LeakyReLU."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(LEAKY_SLOPE)
    )


def down_block(c_in: int, c_out: int) -> nn.Sequential:
    """Halve the resolution: conv4x4 stride 2 - BN - LeakyReLU, then a conv3x3 block."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.LeakyReLU(LEAKY_SLOPE),
        conv_block(c_out, c_out),
    )


def up_layer(c_in: int, c_out: int) -> nn.Sequential:
    """Double the resolution: transposed conv4x4 stride 2 - BN - LeakyReLU."""
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.LeakyReLU(LEAKY_SLOPE),
    )


class UNetAutoencoder(nn.Module):
    """U-Net-shaped autoencoder whose skips exist only at the deeper levels, through narrow 1x1 convs."""

    def __init__(
        self,
        base_channels: int,
        depth: int,
        latent_channels: int = LATENT_CHANNELS,
        skip_channels: int = SKIP_CHANNELS,
        skip_free_levels: int = SKIP_FREE_LEVELS,
    ) -> None:
        super().__init__()
        widths = [base_channels * 2**level for level in range(depth + 1)]  # level 0 = full resolution
        self.depth = depth
        self.skip_levels = tuple(level for level in range(depth) if level >= skip_free_levels)
        self.stem = conv_block(3, widths[0])
        self.down = nn.ModuleList(down_block(widths[i], widths[i + 1]) for i in range(depth))
        self.to_code = nn.Conv2d(widths[depth], latent_channels, 1)  # linear bottleneck
        self.from_code = conv_block(latent_channels, widths[depth])
        self.up = nn.ModuleList(up_layer(widths[i + 1], widths[i]) for i in range(depth))
        self.squeeze = nn.ModuleDict(
            {str(level): nn.Conv2d(widths[level], skip_channels, 1) for level in self.skip_levels}
        )
        self.fuse = nn.ModuleList(
            conv_block(widths[i] + (skip_channels if i in self.skip_levels else 0), widths[i]) for i in range(depth)
        )
        self.head = nn.Conv2d(widths[0], 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) in [-1, 1] -> (B, 3, S, S) reconstruction in [-1, 1]; S divisible by 2^depth."""
        skips: dict[int, torch.Tensor] = {}
        h = self.stem(x)  # (B, C0, S, S)
        for level, down in enumerate(self.down):
            if level in self.skip_levels:
                skips[level] = self.squeeze[str(level)](h)  # (B, SKIP_CHANNELS, S / 2^level, S / 2^level)
            h = down(h)  # (B, C_{level+1}, S / 2^(level+1), ...)
        h = self.from_code(self.to_code(h))  # (B, C_depth, S / 2^depth, S / 2^depth)
        for level in reversed(range(self.depth)):
            h = self.up[level](h)  # (B, C_level, S / 2^level, S / 2^level)
            if level in skips:
                h = torch.cat([h, skips[level]], dim=1)  # (B, C_level + SKIP_CHANNELS, ...)
            h = self.fuse[level](h)
        return torch.tanh(self.head(h))  # (B, 3, S, S)


def residual_map(x: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """Per-pixel squared L2 residual over the channels: (B, 3, S, S) x 2 -> (B, S, S)."""
    return (x - reconstruction).pow(2).sum(dim=1)


class Autoencoder(AnomalyMethod):
    """L2 autoencoder: train to reconstruct normal images, score each pixel by its squared residual."""

    name: ClassVar[str] = "ae"
    config_class: ClassVar[type] = AutoencoderConfig
    config: AutoencoderConfig

    def __init__(self, config: AutoencoderConfig, seed: int, device: str = "cpu") -> None:
        super().__init__(config, seed, device)
        stride = 2**config.depth
        if config.image_size % stride or config.image_size // stride < MIN_BOTTLENECK_SIDE:
            raise ValueError(
                f"{self.name}: image_size {config.image_size} must be a multiple of 2^depth = {stride} "
                f"and at least {MIN_BOTTLENECK_SIDE * stride} (depth {config.depth})"
            )
        self.net = self._build_network()
        self.info: dict[str, Any] = {}

    @property
    def normalization(self) -> tuple[Sequence[float], Sequence[float]]:
        return NORMALIZATION

    def _build_network(self) -> UNetAutoencoder:
        """A freshly initialised network; the initial weights depend only on the seed, not on the global RNG."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(torch_seed(derive_seed(self.seed, self.name, "init")))
            net = UNetAutoencoder(self.config.base_channels, self.config.depth)
        return net.to(self.device)

    def _resized_uint8(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """Images resized to the network input: (b, 3, S, S) uint8 on the CPU."""
        x = to_batch(images, self.input_size, (0, 0, 0), (1, 1, 1), self.device)
        return (x * 255).round().clamp(0, 255).to(torch.uint8).cpu()  # (b, 3, S, S)

    def _resized_cache(self, images: Sequence[np.ndarray]) -> torch.Tensor | None:
        """All training images resized once, (N, 3, S, S) uint8, or None when they exceed the cache budget."""
        if len(images) * 3 * self.input_size**2 > RESIZED_CACHE_BYTES:
            return None
        chunks = [
            self._resized_uint8(images[start : start + self.batch_size])
            for start in range(0, len(images), self.batch_size)
        ]
        return torch.cat(chunks)

    def _normalise(self, batch: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) uint8 -> float in [-1, 1] on the device."""
        mean, std = (torch.tensor(v, device=self.device).view(1, 3, 1, 1) for v in NORMALIZATION)
        return (batch.to(self.device).float() / 255.0 - mean) / std

    def _fit(self, images: Sequence[np.ndarray]) -> None:
        cfg = self.config
        n_images = len(images)
        cache = self._resized_cache(images)  # (N, 3, S, S) uint8, or None: resize per batch
        self.net = self._build_network()
        self.net.train()
        optimizer = adam(self.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        order = torch.Generator().manual_seed(torch_seed(derive_seed(self.seed, self.name, "shuffle")))
        n_batches = self._n_batches(n_images)
        epoch_loss = math.nan
        bar = tqdm(range(cfg.epochs), desc="ae", disable=cfg.epochs * n_batches < PROGRESS_MIN_STEPS, leave=False)
        for _ in bar:
            permutation = torch.randperm(n_images, generator=order)
            total = 0.0
            for start in range(0, n_images, self.batch_size):
                idx = permutation[start : start + self.batch_size]
                resized = cache[idx] if cache is not None else self._resized_uint8([images[i] for i in idx.tolist()])
                x = self._normalise(resized)  # (B, 3, S, S)
                loss = F.mse_loss(self.net(x), x)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.item() * len(x)
            epoch_loss = total / n_images
            bar.set_postfix(loss=f"{epoch_loss:.4f}")
        self.net.eval()
        self.info = {"n_train_images": n_images, "final_train_loss": epoch_loss}  # mean loss of the last epoch

    def _anomaly_maps(self, batch: torch.Tensor) -> torch.Tensor:
        self.net.eval()
        return residual_map(batch, self.net(batch))  # (B, S, S)

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {STATE_PREFIX + key: value for key, value in self.net.state_dict().items()}

    def _state_extra(self) -> dict[str, Any]:
        return dict(self.info)

    def _load_state(self, tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
        state = {key.removeprefix(STATE_PREFIX): value for key, value in tensors.items()}
        net = self._build_network()
        expected = net.state_dict()
        if set(state) != set(expected) or any(state[k].shape != v.shape for k, v in expected.items()):
            raise ValueError(
                f"{self.name}: saved weights do not fit a network with base_channels {self.config.base_channels}, "
                f"depth {self.config.depth}"
            )
        net.load_state_dict(state)
        self.net = net.eval()
        self.info = dict(extra)
