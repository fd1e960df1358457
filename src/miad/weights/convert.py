"""A published `.pth` state dict -> a safetensors file with timm's key names, checked against the architecture."""

from __future__ import annotations

from pathlib import Path

from miad.atomic import atomic_path
from miad.weights.fetch import WeightsError

DATA_PARALLEL_PREFIX = "module."  # checkpoints saved from nn.DataParallel
BATCHES_TRACKED = "num_batches_tracked"  # BatchNorm buffer absent from checkpoints older than torch 0.4.1


def timm_shapes(timm_name: str) -> dict[str, tuple[int, ...]]:
    """Key -> shape of timm model `timm_name` with its classifier, built on the meta device (no memory)."""
    import timm
    import torch

    with torch.device("meta"):
        model = timm.create_model(timm_name, pretrained=False)
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def to_timm_state_dict(state: dict, timm_name: str, source: str) -> dict:
    """`state` renamed and completed for timm: DataParallel prefix dropped, missing BatchNorm counters added (unused
    in eval mode), keys in the model's order; raises WeightsError naming what does not fit."""
    import torch

    from miad.backbones import check_state_dict

    if state and all(key.startswith(DATA_PARALLEL_PREFIX) for key in state):
        state = {key.removeprefix(DATA_PARALLEL_PREFIX): value for key, value in state.items()}
    expected = timm_shapes(timm_name)
    for key, shape in expected.items():
        if key.endswith(BATCHES_TRACKED) and key not in state and shape == ():
            state[key] = torch.tensor(0, dtype=torch.long)
    try:
        check_state_dict(state, expected, source, timm_name)
    except ValueError as exc:
        raise WeightsError(str(exc)) from exc
    return {key: state[key].contiguous() for key in expected}


def convert(pth: Path, timm_name: str, out: Path, source: str) -> None:
    """Write `pth`'s tensors (read without unpickling objects) as safetensors at `out`, atomically, then load it back
    the way training does (miad.backbones) to prove the file is usable."""
    from safetensors.torch import save_file

    from miad.backbones import load_checked_state_dict, read_state_dict

    try:
        state = read_state_dict(pth, timm_name)
    except Exception as exc:  # torch's unpickler raises many types on a file that is not a state dict
        raise WeightsError(f"{source}: not a readable state dict of tensors: {exc}") from exc
    tensors = to_timm_state_dict(dict(state), timm_name, source)
    with atomic_path(out, mode=0o644) as temp:
        save_file(tensors, str(temp))
    try:
        load_checked_state_dict(timm_name, str(out))
    except ValueError as exc:
        raise WeightsError(f"{out}: written but does not load as {timm_name}: {exc}") from exc
