"""DRAEM's anomaly simulation: Perlin masks, texture augmentations, blending and train-pool-only textures."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from miad.methods.draem_augment import (
    AUGMENTATIONS,
    AnomalySimulator,
    augment_texture,
    blend,
    find_anomaly_sources,
    perlin_mask,
    perlin_noise,
    read_texture,
    write_demo_textures,
)

SIZE = 64


@pytest.fixture(scope="module")
def textures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_demo_textures(tmp_path_factory.mktemp("textures"), per_pool=2, size=48)


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((SIZE, SIZE, 3), dtype=np.float32)


@pytest.mark.parametrize("scales", [(0, 6), (3, 4), (5, 6)])
def test_perlin_mask_is_binary_and_seeded(scales: tuple[int, int]) -> None:
    masks = [perlin_mask(SIZE, np.random.default_rng(seed), *scales) for seed in (5, 5, 6)]
    assert masks[0].shape == (SIZE, SIZE) and masks[0].dtype == np.float32
    assert set(np.unique(masks[0])) <= {0.0, 1.0}
    np.testing.assert_array_equal(masks[0], masks[1])
    assert not np.array_equal(masks[0], masks[2]) or masks[0].sum() == masks[2].sum() == 0


def test_perlin_mask_covers_a_plausible_share() -> None:
    shares = [perlin_mask(SIZE, np.random.default_rng(seed), 0, 6).mean() for seed in range(40)]
    assert max(shares) < 0.6  # threshold 0.5 on noise in about [-1, 1]
    assert len(set(shares)) > 20  # the share follows the seed
    assert np.mean(shares) > 0.02  # but not always empty


def test_perlin_noise_odd_sizes_and_range() -> None:
    noise = perlin_noise((50, 70), (8, 32), np.random.default_rng(0))  # sides the grid does not divide
    assert noise.shape == (50, 70) and np.isfinite(noise).all()
    assert np.abs(noise).max() <= np.sqrt(2) + 1e-9


@pytest.mark.parametrize("augmentation", AUGMENTATIONS, ids=lambda f: f.__name__)
def test_each_augmentation_keeps_dtype_shape_and_range(augmentation) -> None:
    texture = np.random.default_rng(1).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    for seed in range(5):
        out = augmentation(texture, np.random.default_rng(seed))
        assert out.dtype == np.uint8 and out.shape == texture.shape


def test_augment_texture_is_seeded_and_changes_the_texture() -> None:
    texture = np.random.default_rng(2).integers(30, 220, (SIZE, SIZE, 3), dtype=np.uint8)
    a = augment_texture(texture, np.random.default_rng(9), 3)
    b = augment_texture(texture, np.random.default_rng(9), 3)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.uint8 and a.shape == texture.shape
    changed = [not np.array_equal(augment_texture(texture, np.random.default_rng(s), 3), texture) for s in range(10)]
    assert sum(changed) >= 8


def test_blend_formula() -> None:
    image, texture = _image(0), _image(1)
    mask = np.zeros((SIZE, SIZE), np.float32)
    mask[10:20, 30:40] = 1
    out = blend(image, texture, mask, beta=0.25)
    np.testing.assert_array_equal(out[mask == 0], image[mask == 0])
    np.testing.assert_allclose(out[mask == 1], 0.75 * texture[mask == 1] + 0.25 * image[mask == 1], rtol=1e-6)


def test_simulated_sample_changes_exactly_the_masked_pixels(textures: Path) -> None:
    simulator = AnomalySimulator(find_anomaly_sources(textures), SIZE, rotation_degrees=0.0)
    image = _image(3)
    n_anomalous = 0
    for seed in range(20):
        clean, augmented, mask = simulator(image, np.random.default_rng(seed))
        for array in (clean, augmented, mask):
            assert array.dtype == np.float32 and np.isfinite(array).all()
        assert augmented.shape == (SIZE, SIZE, 3) and mask.shape == (SIZE, SIZE)
        assert augmented.min() >= 0.0 and augmented.max() <= 1.0
        np.testing.assert_array_equal(clean, image)  # no rotation configured
        changed = np.abs(augmented - clean).max(axis=-1) > 1e-6
        assert not (changed & (mask == 0)).any(), "pixels outside the mask changed"
        assert changed[mask == 1].mean() > 0.9 if mask.any() else not changed.any()
        n_anomalous += bool(mask.any())
    assert 4 <= n_anomalous <= 16  # half of the samples stay normal


def test_simulator_is_deterministic_and_rotates_normal_images(textures: Path) -> None:
    simulator = AnomalySimulator(find_anomaly_sources(textures), SIZE, rotation_degrees=45.0)
    image = _image(4)
    runs = [[simulator(image, np.random.default_rng(s)) for s in range(12)] for _ in range(2)]
    for first, second in zip(*runs, strict=True):
        for a, b in zip(first, second, strict=True):
            np.testing.assert_array_equal(a, b)
    rotated = [not np.array_equal(clean, image) for clean, _, _ in runs[0]]
    assert 0 < sum(rotated) < len(rotated)  # the original rotates with probability 0.3


def test_only_train_pool_textures_are_found(textures: Path, tmp_path: Path) -> None:
    found = find_anomaly_sources(textures)
    assert found and all(path.parent.name == "train" for path in found)
    assert len(found) == len(list(textures.glob("*/test/*.png")))  # same pool sizes, none of the test pool
    assert found == sorted(found, key=lambda p: p.relative_to(textures).as_posix())
    image = read_texture(found[0], 40)
    assert image.shape == (40, 40, 3) and image.dtype == np.uint8
    (tmp_path / "rust" / "test").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "rust" / "test" / "t.png"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "train.png").write_bytes(b"")  # a file named train is not a train folder
    for root in (tmp_path, tmp_path / "missing"):
        with pytest.raises(FileNotFoundError, match="miad assets restore") as info:
            find_anomaly_sources(root)
        assert str(root) in str(info.value)


def test_simulator_rejects_bad_settings(textures: Path) -> None:
    sources = find_anomaly_sources(textures)
    with pytest.raises(ValueError, match="perlin_scale_min"):
        AnomalySimulator(sources, SIZE, perlin_scale_min=3, perlin_scale_max=3)
    with pytest.raises(ValueError, match="augmentations_per_image"):
        AnomalySimulator(sources, SIZE, augmentations_per_image=len(AUGMENTATIONS) + 1)
    with pytest.raises(ValueError, match="expected an image of shape"):
        AnomalySimulator(sources, SIZE)(np.zeros((SIZE, SIZE + 1, 3), np.float32), np.random.default_rng(0))
