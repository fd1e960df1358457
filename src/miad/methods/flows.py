"""Invertible 2D flow steps with an exact log-determinant, in the style of FrEIA's `AllInOneBlock`.

FastFlow (Yu et al. 2021) stacks FrEIA `AllInOneBlock`s (anomalib: `affine_clamping=clamp`,
`permute_soft=False`, otherwise FrEIA's defaults). FrEIA is not installable offline, so one step is
written here with the same semantics, for 2D (B, C, H, W) inputs and no conditioning:

1. split channels into x1 (the first C - C // 2) and x2 (the last C // 2);
2. a = 0.1 * subnet(x1) (FrEIA scales the whole coefficient tensor by 0.1), s = clamp * tanh(a[:, :C//2]),
   t = a[:, C//2:]; x2 <- x2 * exp(s) + t; log-det += sum(s);
3. global affine: x <- x * g + offset with g = 0.1 * softplus(raw, beta=0.5) per channel (FrEIA's default
   'SOFTPLUS' type, initialised to g = 1); log-det += H * W * sum(log g);
4. a fixed random channel permutation (`permute_soft=False`), drawn from a seeded generator and kept
   as a buffer so a saved model restores it exactly.

FrEIA applies the permutation as a 1x1 convolution with a 0/1 matrix; here it is an index_select
(identical values, and exact where TF32 convolutions would round).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

COEFFICIENT_SCALE = 0.1  # FrEIA scales the subnet output by 0.1 "for stability and easier initialization"
GLOBAL_SCALE_BETA = 0.5  # FrEIA 'SOFTPLUS' global affine: g = 0.1 * softplus(raw, beta=0.5)
GLOBAL_SCALE_FACTOR = 0.1
GLOBAL_AFFINE_INIT = 1.0  # FrEIA's default global_affine_init


def global_scale_raw(init: float = GLOBAL_AFFINE_INIT) -> float:
    """Raw parameter whose activation 0.1 * softplus(raw, beta=0.5) equals `init` (FrEIA: 2 log(e^(5 init) - 1))."""
    return math.log(math.expm1(GLOBAL_SCALE_BETA * init / GLOBAL_SCALE_FACTOR)) / GLOBAL_SCALE_BETA


class _ChannelPermutation(torch.autograd.Function):
    """x[:, perm] whose backward is a gather by the inverse permutation (no scatter-add: deterministic anywhere)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, perm: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(inverse)
        return x.index_select(1, perm)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (inverse,) = ctx.saved_tensors
        return grad.index_select(1, inverse), None, None


def permute_channels(x: torch.Tensor, perm: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H, W) with output channel i = input channel perm[i]."""
    return _ChannelPermutation.apply(x, perm, inverse)


def conv_subnet(in_channels: int, hidden_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    """FastFlow's coupling subnet: conv(k) -> ReLU -> conv(k), 'same' zero padding (k odd)."""
    if kernel_size % 2 != 1:
        raise ValueError(f"subnet kernel size must be odd, got {kernel_size}")
    pad = kernel_size // 2
    return nn.Sequential(
        nn.Conv2d(in_channels, hidden_channels, kernel_size, padding=pad),
        nn.ReLU(),
        nn.Conv2d(hidden_channels, out_channels, kernel_size, padding=pad),
    )


class AllInOneCoupling(nn.Module):
    """One flow step: affine coupling, global affine scaling, fixed channel permutation (see module docstring)."""

    def __init__(
        self, channels: int, kernel_size: int, hidden_ratio: float, clamp: float, generator: torch.Generator
    ) -> None:
        super().__init__()
        if channels < 2:
            raise ValueError(f"a coupling block needs at least 2 channels, got {channels}")
        self.splits = (channels - channels // 2, channels // 2)  # FrEIA: the passive half gets the odd channel
        self.clamp = clamp
        hidden = max(1, int(self.splits[0] * hidden_ratio))  # anomalib: int(in_channels * hidden_ratio)
        self.global_scale = nn.Parameter(torch.full((1, channels, 1, 1), global_scale_raw()))
        self.global_offset = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("permutation", torch.randperm(channels, generator=generator))
        self.subnet = conv_subnet(self.splits[0], hidden, 2 * self.splits[1], kernel_size)

    def scale(self) -> torch.Tensor:
        """Per-channel global scale g, (1, C, 1, 1)."""
        activation = nn.functional.softplus(self.global_scale, beta=GLOBAL_SCALE_BETA)
        return GLOBAL_SCALE_FACTOR * activation

    def _coefficients(self, passive: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = COEFFICIENT_SCALE * self.subnet(passive)  # (B, 2 * C2, H, W)
        c2 = self.splits[1]
        return self.clamp * torch.tanh(a[:, :c2]), a[:, c2:]  # log-scale s (soft-clamped), shift t

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, H, W) -> (z of the same shape, log|det dz/dx| of shape (B,))."""
        x1, x2 = torch.split(x, self.splits, dim=1)
        s, t = self._coefficients(x1)
        y = torch.cat((x1, x2 * torch.exp(s) + t), dim=1)  # (B, C, H, W)
        g = self.scale()
        z = permute_channels(y * g + self.global_offset, self.permutation, torch.argsort(self.permutation))
        n_pixels = x.shape[2] * x.shape[3]
        return z, s.sum(dim=(1, 2, 3)) + n_pixels * torch.log(g).sum()

    def inverse(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, H, W) z -> (x, log|det dx/dz| of shape (B,)); undoes `forward`."""
        g = self.scale()
        y = (permute_channels(z, torch.argsort(self.permutation), self.permutation) - self.global_offset) / g
        y1, y2 = torch.split(y, self.splits, dim=1)
        s, t = self._coefficients(y1)
        x = torch.cat((y1, (y2 - t) * torch.exp(-s)), dim=1)  # (B, C, H, W)
        n_pixels = z.shape[2] * z.shape[3]
        return x, -s.sum(dim=(1, 2, 3)) - n_pixels * torch.log(g).sum()


class Flow2d(nn.Sequential):
    """A sequence of `AllInOneCoupling` steps (FrEIA `SequenceINN`); subnet kernels alternate 3x3 / 1x1."""

    def __init__(
        self,
        channels: int,
        steps: int,
        hidden_ratio: float,
        clamp: float,
        conv3x3_only: bool,
        generator: torch.Generator,
    ) -> None:
        kernels = [1 if i % 2 == 1 and not conv3x3_only else 3 for i in range(steps)]  # anomalib's rule
        super().__init__(*(AllInOneCoupling(channels, k, hidden_ratio, clamp, generator) for k in kernels))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, H, W) -> (z, summed log-det (B,))."""
        log_det = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for step in self:
            x, step_log_det = step(x)
            log_det = log_det + step_log_det
        return x, log_det

    def inverse(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Undo `forward`: (B, C, H, W) z -> (x, log|det dx/dz| (B,))."""
        log_det = torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)
        for step in reversed(self):
            z, step_log_det = step.inverse(z)
            log_det = log_det + step_log_det
        return z, log_det
