"""Randomly initialised weights files of the paper backbones: the exact architectures, no download."""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from safetensors.torch import save_file

from miad.seeding import derive_seed, torch_seed
from miad.weights.catalog import PAPER_WEIGHTS, default_target


def write_random_weights(name: str, path: Path, seed: int) -> Path:
    """timm `name` built with pretrained=False under a seed derived from `seed`; its state dict as safetensors."""
    if name not in PAPER_WEIGHTS:
        raise ValueError(f"unknown paper backbone {name!r}; expected one of {sorted(PAPER_WEIGHTS)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(torch_seed(derive_seed(seed, "rehearsal", "weights", name)))
        model = timm.create_model(PAPER_WEIGHTS[name].timm_name, pretrained=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def write_paper_backbones(project: Path, seed: int) -> list[Path]:
    """Every paper backbone's weights file where the paper profile expects it (weights/<name>.safetensors)."""
    return [write_random_weights(name, project / default_target(name), seed) for name in sorted(PAPER_WEIGHTS)]
