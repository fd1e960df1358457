"""DRAEM's two sub-networks and losses, as in the authors' `model_unet.py` and `loss.py` (github.com/vitjanz/draem).

Module names follow the original, so its state dicts map one to one (`encoder.block1.0.weight`, ...).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

SSIM_WINDOW = 11  # px, Gaussian window of the SSIM loss
SSIM_SIGMA = 1.5
FOCAL_GAMMA = 2.0
FOCAL_SMOOTH = 1e-5  # label smoothing and log guard of the original FocalLoss (alpha=None: 1 for both classes)
INIT_STD = 0.02  # the original's weights_init: conv ~ N(0, 0.02), BatchNorm scale ~ N(1, 0.02), shift 0
REC_DOWNSAMPLINGS = 4  # max-pools of the reconstructive encoder
DISC_DOWNSAMPLINGS = 5  # ... and of the discriminative encoder: the input side must be a multiple of 2**5


def conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel_size=3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def double_conv(cin: int, cmid: int, cout: int) -> nn.Sequential:
    return nn.Sequential(*conv_bn_relu(cin, cmid), *conv_bn_relu(cmid, cout))


def up_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True), *conv_bn_relu(cin, cout))


class Encoder(nn.Module):
    """Double-conv blocks at widths w, 2w, 4w, 8w, 8w(, 8w), each but the first after a 2x2 max-pool."""

    def __init__(self, in_channels: int, width: int, n_blocks: int) -> None:
        super().__init__()
        widths = [width, width * 2, width * 4, width * 8] + [width * 8] * (n_blocks - 4)
        cin = in_channels
        for i, cout in enumerate(widths, start=1):
            self.add_module(f"block{i}", double_conv(cin, cout, cout))
            if i < n_blocks:
                self.add_module(f"mp{i}", nn.MaxPool2d(2))
            cin = cout
        self.n_blocks = n_blocks

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for i in range(1, self.n_blocks + 1):
            x = getattr(self, f"block{i}")(x if i == 1 else getattr(self, f"mp{i - 1}")(x))
            features.append(x)
        return features  # [(B, w, S, S), (B, 2w, S/2, S/2), ...]


class ReconstructiveSubNetwork(nn.Module):
    """Encoder-decoder without skips: (B, 3, S, S) image with anomalies -> (B, 3, S, S) reconstruction."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, base_width: int = 128) -> None:
        super().__init__()
        w = base_width
        self.encoder = Encoder(in_channels, w, REC_DOWNSAMPLINGS + 1)
        decoder = nn.Module()
        for i, (cin, cout) in enumerate([(8 * w, 4 * w), (4 * w, 2 * w), (2 * w, w), (w, w)], start=1):
            decoder.add_module(f"up{i}", up_conv(cin, cin))
            decoder.add_module(f"db{i}", double_conv(cin, cin, cout))
        decoder.add_module("fin_out", nn.Sequential(nn.Conv2d(w, out_channels, kernel_size=3, padding=1)))
        self.decoder = decoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.encoder(x)[-1]  # (B, 8w, S/16, S/16)
        for i in range(1, REC_DOWNSAMPLINGS + 1):
            x = getattr(self.decoder, f"db{i}")(getattr(self.decoder, f"up{i}")(x))
        return self.decoder.fin_out(x)  # (B, 3, S, S)


class DiscriminativeSubNetwork(nn.Module):
    """U-Net: (B, 6, S, S) reconstruction and input -> (B, 2, S, S) normal/anomalous logits."""

    def __init__(self, in_channels: int = 6, out_channels: int = 2, base_channels: int = 64) -> None:
        super().__init__()
        w = base_channels
        self.encoder_segment = Encoder(in_channels, w, DISC_DOWNSAMPLINGS + 1)
        decoder = nn.Module()
        stages = [("_b", 8 * w, 8 * w, 8 * w), ("1", 8 * w, 4 * w, 8 * w), ("2", 4 * w, 2 * w, 4 * w)]
        stages += [("3", 2 * w, w, 2 * w), ("4", w, w, w)]  # (name, in, out, skip channels)
        for name, cin, cout, skip in stages:
            decoder.add_module(f"up{name}", up_conv(cin, cout))
            decoder.add_module(f"db{name}", double_conv(cout + skip, cout, cout))
        decoder.add_module("fin_out", nn.Sequential(nn.Conv2d(w, out_channels, kernel_size=3, padding=1)))
        self.decoder_segment = decoder
        self.stage_names = [name for name, *_ in stages]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *skips, x = self.encoder_segment(x)  # skips b1..b5, x = b6 (B, 8w, S/32, S/32)
        for name, skip in zip(self.stage_names, reversed(skips), strict=True):
            up = getattr(self.decoder_segment, f"up{name}")(x)
            x = getattr(self.decoder_segment, f"db{name}")(torch.cat((up, skip), dim=1))
        return self.decoder_segment.fin_out(x)  # (B, 2, S, S)


@torch.no_grad()
def init_weights(module: nn.Module, generator: torch.Generator | None = None) -> None:
    """The original's `weights_init` (conv biases keep PyTorch's default initialisation)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            m.weight.normal_(0.0, INIT_STD, generator=generator)
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.normal_(1.0, INIT_STD, generator=generator)
            m.bias.zero_()


def _gaussian_window(size: int, sigma: float, channels: int, like: torch.Tensor) -> torch.Tensor:
    x = torch.tensor([math.exp(-((i - size // 2) ** 2) / (2 * sigma**2)) for i in range(size)])
    g = (x / x.sum()).unsqueeze(1)  # (size, 1)
    window = (g @ g.t()).to(like)  # (size, size)
    return window.expand(channels, 1, size, size).contiguous()  # (C, 1, size, size)


def ssim_loss(prediction: torch.Tensor, target: torch.Tensor, window_size: int = SSIM_WINDOW) -> torch.Tensor:
    """1 - mean SSIM over (B, C, H, W), as the original `SSIM` (zero padding; data range read off `prediction`)."""
    channels = prediction.shape[1]
    max_val = 255.0 if float(prediction.detach().max()) > 128 else 1.0
    min_val = -1.0 if float(prediction.detach().min()) < -0.5 else 0.0
    data_range = max_val - min_val
    window = _gaussian_window(window_size, SSIM_SIGMA, channels, prediction)
    pad = window_size // 2

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, window, padding=pad, groups=channels)

    mu1, mu2 = blur(prediction), blur(target)
    sigma1_sq = blur(prediction * prediction) - mu1.pow(2)
    sigma2_sq = blur(target * target) - mu2.pow(2)
    sigma12 = blur(prediction * target) - mu1 * mu2
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    ssim_map = ((2 * mu1 * mu2 + c1) * (2 * sigma12 + c2)) / (
        (mu1.pow(2) + mu2.pow(2) + c1) * (sigma1_sq + sigma2_sq + c2)
    )
    return 1.0 - ssim_map.mean()


def focal_loss(probabilities: torch.Tensor, mask: torch.Tensor, gamma: float = FOCAL_GAMMA) -> torch.Tensor:
    """Mean focal loss of (B, 2, H, W) softmax outputs against a (B, 1, H, W) binary mask, as the original."""
    n_classes = probabilities.shape[1]
    probs = probabilities.permute(0, 2, 3, 1).reshape(-1, n_classes)  # (B*H*W, 2)
    target = mask.reshape(-1).long()  # (B*H*W,)
    one_hot = F.one_hot(target, n_classes).to(probs.dtype).clamp(FOCAL_SMOOTH / (n_classes - 1), 1.0 - FOCAL_SMOOTH)
    pt = (one_hot * probs).sum(dim=1) + FOCAL_SMOOTH  # (B*H*W,)
    return (-torch.pow(1 - pt, gamma) * pt.log()).mean()
