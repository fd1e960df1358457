"""Streaming fit: every method reads its training images batch by batch and never holds the decoded set."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from miad.methods import METHODS, create_method, patchcore
from miad.methods.draem_augment import write_demo_textures
from tests.test_methods import SEED, TEST_CONFIGS, TRAIN_SIZE

N_IMAGES = 13  # three batches of 4 and a trailing one


class CountingImages:
    """A lazy image sequence that decodes on access (like a ShardDataset) and counts the images alive at once."""

    def __init__(self, n: int, seed: int, bad: int | None = None) -> None:
        self._n, self._seed, self._bad = n, seed, bad
        self.alive = 0
        self.max_alive = 0

    def __len__(self) -> int:
        return self._n

    def _release(self) -> None:
        self.alive -= 1

    def __getitem__(self, i):  # type: ignore[no-untyped-def]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._n))]
        if not 0 <= i < self._n:
            raise IndexError(i)
        rng = np.random.default_rng([self._seed, i])
        image = rng.integers(0, 256, (*TRAIN_SIZE, 3), dtype=np.uint8)
        if i == self._bad:
            image = image.astype(np.float32)
        self.alive += 1
        weakref.finalize(image, self._release)
        self.max_alive = max(self.max_alive, self.alive)
        return image


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    textures = write_demo_textures(tmp_path_factory.mktemp("draem-textures"))
    yield TEST_CONFIGS | {"draem": replace(TEST_CONFIGS["draem"], anomaly_source=str(textures))}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_fit_holds_at_most_a_batch_of_images(name: str, configs: dict[str, object]) -> None:
    images = CountingImages(N_IMAGES, seed=3)
    method = create_method(name, configs[name], SEED)
    method.fit(images)
    batch_size = configs[name].batch_size  # type: ignore[attr-defined]
    assert 1 <= images.max_alive <= batch_size, f"{name} held {images.max_alive} decoded images at once"


@pytest.mark.parametrize("name", sorted(METHODS))
def test_lazy_bad_image_is_named(name: str, configs: dict[str, object]) -> None:
    method = create_method(name, configs[name], SEED)
    with pytest.raises(ValueError, match=r"image 0\)"):
        method.fit(CountingImages(5, seed=3, bad=0))
    assert not method.fitted


def test_lazy_and_in_memory_images_train_the_same_bits(configs: dict[str, object], tmp_path: Path) -> None:
    lazy = CountingImages(6, seed=5)
    for kind, images in (("lazy", lazy), ("list", [lazy[i] for i in range(6)])):
        method = create_method("fastflow", configs["fastflow"], SEED)
        method.fit(images)
        method.save(tmp_path / kind)
    assert (tmp_path / "lazy/model.safetensors").read_bytes() == (tmp_path / "list/model.safetensors").read_bytes()


@pytest.mark.parametrize("ratio", [0.25, 1.0])
def test_streamed_patchcore_bank_matches_the_whole_bank(
    ratio: float, configs: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = replace(configs["patchcore"], coreset_ratio=ratio)
    images = CountingImages(7, seed=9)
    whole = create_method("patchcore", config, SEED)
    whole.fit(images)
    monkeypatch.setattr(patchcore, "EXACT_BANK_BYTES", 0)  # every bank is "too large": two streaming passes
    streamed = create_method("patchcore", config, SEED)
    streamed.fit(images)
    assert images.max_alive <= config.batch_size
    assert whole.info == streamed.info
    torch.testing.assert_close(streamed.projection, whole.projection, rtol=0, atol=0)
    torch.testing.assert_close(streamed.memory_bank, whole.memory_bank, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("ratio", "streamed"), [(0.25, False), (0.25, True), (1.0, True)])
def test_plan_computes_the_bank_a_fit_builds(
    ratio: float, streamed: bool, configs: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`miad plan` prices PatchCore from computed sizes: they must be the sizes `fit` really builds."""
    from miad.plan.patchcore_bank import bank_sizes, feature_geometry

    config = replace(configs["patchcore"], coreset_ratio=ratio)
    if streamed:
        monkeypatch.setattr(patchcore, "EXACT_BANK_BYTES", 0)
    model = create_method("patchcore", config, SEED)
    model.fit(CountingImages(7, seed=9))
    channels, stride = feature_geometry(config.backbone, tuple(config.layers))
    sizes = bank_sizes(7, config.image_size, channels, stride, ratio)
    assert channels == model.embedding_dim
    assert (sizes.n_patches, sizes.coreset_size) == (model.info["n_patches"], model.info["memory_bank_size"])
    assert sizes.projected_dim == model.projection.shape[1]
    assert sizes.memory_bank_bytes == sum(t.numel() * t.element_size() for t in model._state_tensors().values())
    assert sizes.streamed == (sizes.whole_bank_bytes > patchcore.EXACT_BANK_BYTES)


def _rss_kb(field: str) -> int:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field + ":"))
    return int(line.split()[1])


def test_greedy_coreset_holds_no_second_copy_of_the_projections(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its memory is the (N, k) input plus O(N): 12.3 GB of projections at paper scale must not need 24.6."""
    projected = torch.randn(2**19, 128, generator=torch.Generator().manual_seed(0))  # 256 MiB
    chunks = projected.shape[0] // patchcore.SQ_NORM_CHUNK_ROWS
    assert chunks >= 4  # the chunked squared norms are what this checks
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
    start_kb = _rss_kb("VmRSS")
    chunked = patchcore.greedy_coreset(projected, 8, torch.Generator().manual_seed(1))
    grown_mb = (_rss_kb("VmHWM") - start_kb) / 1024
    assert grown_mb < 64, f"greedy_coreset grew RSS by {grown_mb:.0f} MB over a 256 MiB input"
    # chunking the squared norms changes no bit: one piece gives the same picks
    monkeypatch.setattr(patchcore, "SQ_NORM_CHUNK_ROWS", projected.shape[0])
    assert torch.equal(chunked, patchcore.greedy_coreset(projected, 8, torch.Generator().manual_seed(1)))
