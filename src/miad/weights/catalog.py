"""Where each paper backbone's ImageNet weights come from (public URLs and the publisher's checksums)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WeightsSource:
    """One published checkpoint and the timm architecture it fits."""

    timm_name: str  # the timm model whose state dict (key names, shapes) the checkpoint must match
    url: str  # public URL of the published .pth state dict
    sha256: str  # the publisher's checksum: torch.hub's convention puts the sha256's first 8 hex digits in the name
    origin: str  # what it is and who uses it


PAPER_WEIGHTS: dict[str, WeightsSource] = {
    "wide_resnet50_2": WeightsSource(
        timm_name="wide_resnet50_2",
        url="https://download.pytorch.org/models/wide_resnet50_2-95faca4d.pth",
        sha256="95faca4d",
        origin="torchvision Wide_ResNet50_2_Weights.IMAGENET1K_V1 (timm wide_resnet50_2.tv_in1k), the weights the "
        "original RD and PatchCore load; paper profile: RD, PatchCore, FastFlow",
    ),
    "efficientnet_b4": WeightsSource(
        timm_name="efficientnet_b4",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/"
        "efficientnet_b4_ra2_320-7eb33cd5.pth",
        sha256="7eb33cd5",
        origin="timm efficientnet_b4.ra2_in1k; paper profile: UniAD",
    ),
}
WEIGHTS_DIR = "weights"  # where params.yaml's paper profile expects them: weights/<name>.safetensors


def default_target(name: str) -> str:
    """The path the paper profile's params point at for backbone `name`."""
    return f"{WEIGHTS_DIR}/{name}.safetensors"
