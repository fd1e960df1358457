"""Networks, loss and anomaly map of Reverse Distillation (Deng & Li, CVPR 2022), after anomalib.

The frozen teacher is a timm feature extractor (`miad.backbones`); this module holds what is trained:
the one-class bottleneck embedding (OCBE: multi-scale feature fusion + one-class embedding) and the
student decoder, which mirrors the teacher in reverse with transposed-convolution upsampling.

Both are built from the teacher's three feature maps (channels c1, c2, c3 at strides r, 2r, 4r), so
the same code serves wide_resnet50_2 and tf_efficientnet_lite0. On wide_resnet50_2 (256, 512, 1024)
it reproduces anomalib's `OCBE(Bottleneck, 3)` and `de_wide_resnet50_2` layer for layer, shape for
shape (anomalib's unused `conv4`/`bn4` of the OCBE are left out: they never enter the forward pass).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

EXPANSION = 4  # ResNet bottleneck: block output channels / planes
BASE_WIDTH = 64  # torchvision's reference width_per_group
OCE_BLOCKS = 3  # anomalib get_bottleneck_layer: OCBE(Bottleneck, 3) for every ResNet-50-like backbone
OCE_WIDTH_PER_GROUP = 64  # anomalib builds the OCBE with the default 64 (the authors' code passes 128 for WRN50-2)
OCE_CHANNEL_FACTOR = 2  # OCE output channels / deepest teacher channels (WRN50-2: 512 planes x 4 = 2 x 1024)
DECODER_BLOCKS = (3, 4, 6)  # de_wide_resnet50_2: ResNet(DecoderBottleneck, [3, 4, 6, 3]) uses layers[:3], deep first
DECODER_WIDTH_PER_GROUP = 128  # de_wide_resnet50_2
N_SCALES = 3  # the MFF fuses exactly three teacher maps


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)


def deconv2x2(in_channels: int, out_channels: int) -> nn.ConvTranspose2d:
    """2x upsampling as anomalib's decoder does it: a 2x2 transposed convolution with stride 2."""
    return nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2, bias=False)


def bottleneck_width(out_channels: int, width_per_group: int) -> int:
    """Inner width of a bottleneck block: planes * width_per_group / 64, planes = out_channels / 4."""
    return max(1, out_channels * width_per_group // (EXPANSION * BASE_WIDTH))


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck (1x1, 3x3, 1x1 + shortcut) with explicit channels.

    `resample` "down": stride-2 3x3 conv and a stride-2 1x1 shortcut (torchvision's Bottleneck, used by
    the OCE); "up": 2x2 stride-2 transposed convs in both paths (anomalib's DecoderBottleneck); None: a
    plain block, identity shortcut when the channels match.
    """

    def __init__(self, in_channels: int, width: int, out_channels: int, resample: str | None = None) -> None:
        super().__init__()
        if resample not in (None, "down", "up"):
            raise ValueError(f"resample must be None, 'down' or 'up', got {resample!r}")
        self.conv1 = conv1x1(in_channels, width)
        self.bn1 = nn.BatchNorm2d(width)
        if resample == "up":
            self.conv2: nn.Module = deconv2x2(width, width)
        else:
            self.conv2 = conv3x3(width, width, stride=2 if resample == "down" else 1)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module | None = None
        if resample == "up":
            self.shortcut = nn.Sequential(deconv2x2(in_channels, out_channels), nn.BatchNorm2d(out_channels))
        elif resample == "down" or in_channels != out_channels:
            stride = 2 if resample == "down" else 1
            self.shortcut = nn.Sequential(conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def stage(in_channels: int, out_channels: int, blocks: int, width_per_group: int, resample: str) -> nn.Sequential:
    """A ResNet layer: one resampling block, then `blocks - 1` plain ones (anomalib's `_make_layer`)."""
    width = bottleneck_width(out_channels, width_per_group)
    layers = [Bottleneck(in_channels, width, out_channels, resample)]
    layers += [Bottleneck(out_channels, width, out_channels) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class OneClassBottleneck(nn.Module):
    """OCBE: fuse the three teacher maps at the deepest scale (MFF), then embed them (OCE) at half that size.

    MFF as anomalib/the original: map 1 goes through two stride-2 3x3 conv+BN+ReLU (c1 -> c2 -> c3),
    map 2 through one (c2 -> c3); both are concatenated with map 3 (3 * c3 channels). The OCE is a
    stride-2 ResNet layer of `OCE_BLOCKS` bottlenecks with `OCE_CHANNEL_FACTOR * c3` output channels.
    """

    def __init__(self, channels: Sequence[int]) -> None:
        super().__init__()
        c1, c2, c3 = channels
        self.conv1 = conv3x3(c1, c2, stride=2)
        self.bn1 = nn.BatchNorm2d(c2)
        self.conv2 = conv3x3(c2, c3, stride=2)
        self.bn2 = nn.BatchNorm2d(c3)
        self.conv3 = conv3x3(c2, c3, stride=2)
        self.bn3 = nn.BatchNorm2d(c3)
        self.relu = nn.ReLU(inplace=True)
        self.out_channels = OCE_CHANNEL_FACTOR * c3
        self.oce = stage(3 * c3, self.out_channels, OCE_BLOCKS, OCE_WIDTH_PER_GROUP, "down")

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Three (B, c_k, h_k, w_k) teacher maps -> (B, 2 * c3, h3 / 2, w3 / 2) embedding."""
        f1 = self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(features[0]))))))  # (B, c3, h3, w3)
        f2 = self.relu(self.bn3(self.conv3(features[1])))  # (B, c3, h3, w3)
        fused = torch.cat([f1, f2, features[2]], dim=1)  # (B, 3 * c3, h3, w3)
        return self.oce(fused).contiguous()


class ReverseDecoder(nn.Module):
    """Student decoder: three upsampling ResNet layers, deepest first, each ending at a teacher map's shape."""

    def __init__(self, in_channels: int, channels: Sequence[int]) -> None:
        super().__init__()
        layers = []
        for out_channels, blocks in zip(reversed(channels), DECODER_BLOCKS, strict=True):
            layers.append(stage(in_channels, out_channels, blocks, DECODER_WIDTH_PER_GROUP, "up"))
            in_channels = out_channels
        self.layers = nn.ModuleList(layers)

    def forward(self, embedding: torch.Tensor) -> list[torch.Tensor]:
        """(B, C, h, w) embedding -> student maps in the teacher's order (shallow first)."""
        outputs = []
        x = embedding
        for layer in self.layers:
            x = layer(x)  # (B, c_k, 2h, 2w)
            outputs.append(x)
        return outputs[::-1]


class ReverseDistillationStudent(nn.Module):
    """Everything Reverse Distillation trains: OCBE + decoder, initialised as anomalib does."""

    def __init__(self, channels: Sequence[int]) -> None:
        super().__init__()
        if len(channels) != N_SCALES:
            raise ValueError(f"reverse distillation needs {N_SCALES} teacher feature maps, got {len(channels)}")
        self.bottleneck = OneClassBottleneck(channels)
        self.decoder = ReverseDecoder(self.bottleneck.out_channels, channels)
        for module in self.modules():  # ConvTranspose2d keeps torch's default init, as in anomalib
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, teacher_features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Teacher maps -> student maps of the same shapes."""
        return self.decoder(self.bottleneck(teacher_features))


def reverse_distillation_loss(teacher: Sequence[torch.Tensor], student: Sequence[torch.Tensor]) -> torch.Tensor:
    """Sum over scales of mean over images of 1 - cos(teacher, student), each map flattened per image.

    anomalib's `ReverseDistillationLoss`, which follows the authors' `loss_fucntion` (RD4AD main.py);
    the paper's Eq. 2 instead averages a per-position cosine distance taken along channels.
    """
    loss = teacher[0].new_zeros(())
    for t, s in zip(teacher, student, strict=True):
        loss = loss + (1 - F.cosine_similarity(t.flatten(1), s.flatten(1), dim=1)).mean()  # (B, C*h*w) -> ()
    return loss


def anomaly_map(teacher: Sequence[torch.Tensor], student: Sequence[torch.Tensor], size: int) -> torch.Tensor:
    """Per scale 1 - cos along channels, bilinearly resized to (size, size) and summed -> (B, size, size).

    anomalib's `AnomalyMapGenerator` in ADD mode (align_corners=True, as there), without its blur:
    the shared `upsample_maps` blurs every method's map alike.
    """
    total = None
    for t, s in zip(teacher, student, strict=True):
        distance = 1 - F.cosine_similarity(t, s, dim=1)  # (B, h, w)
        up = F.interpolate(distance[:, None], size=(size, size), mode="bilinear", align_corners=True)  # (B, 1, S, S)
        total = up if total is None else total + up
    assert total is not None
    return total[:, 0]  # (B, S, S)
