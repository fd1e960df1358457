"""No train image shares an angle bin (UV), a background (UB) or a texture (US) with any test image.

Three layers: the pools themselves are disjoint (files and bytes); the leak check finds a planted leak; and real
rendered datasets (a day and a night scenario with all three factors) come out leak-free.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from miad.config import load_params
from miad.data.shards import IndexEntry
from miad.data.stats import dataset_stats, leaks
from miad.render import pools
from miad.render.shard import render_dataset
from tests.conftest import tiny_params_dict


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def assets(asset_library: Path) -> Path:
    return asset_library


def test_background_and_texture_pools_are_disjoint(assets: Path) -> None:
    for listing in (pools.day_backgrounds, pools.textures):
        train, test = listing(assets, "train"), listing(assets, "test")
        assert train and test
        assert not {n for n, _ in train} & {n for n, _ in test}
        assert not {_sha(p) for _, p in train} & {_sha(p) for _, p in test}, "same bytes under two names"
    assert not set(pools.night_layouts("train")) & set(pools.night_layouts("test"))


def test_hdris_split_by_name(assets: Path, tmp_path: Path) -> None:
    for i in range(6):
        (tmp_path / f"sky_{i}.exr").write_bytes(bytes([i]))
    train = [n for n, _ in pools.day_backgrounds(assets, "train", tmp_path) if n.startswith(pools.HDRI_PREFIX)]
    test = [n for n, _ in pools.day_backgrounds(assets, "test", tmp_path) if n.startswith(pools.HDRI_PREFIX)]
    assert len(train) == 4 and len(test) == 2 and not set(train) & set(test)
    with pytest.raises(FileNotFoundError, match="hdri_dir"):
        pools.day_backgrounds(assets, "train", tmp_path / "missing")


def _entry(split: str, theta: float, phi: float, background: str | None, texture: str | None) -> IndexEntry:
    record = {
        "camera": {"theta": theta, "phi": phi},
        "background": {"kind": "plate", "name": background} if background else {"kind": "controlled"},
        "surface": {"kind": "rust", "name": texture} if texture else {"kind": "controlled"},
    }
    return IndexEntry(f"{split}_0", split, 0, "good", 0, "", "", record)


def test_leak_check_finds_each_kind_of_leak() -> None:
    train = [_entry("train", 10.5, 20.2, "bg/train/a.png", "rust/train/a.png")]
    clean = [_entry("test", 11.5, 21.9, "bg/test/b.png", "rust/test/b.png")]
    assert not any(leaks(train, clean, ("uv", "ub", "us")).values())
    leaky = [_entry("test", 10.9, 21.0, "bg/train/a.png", "rust/train/a.png")]
    found = leaks(train, leaky, ("uv", "ub", "us"))
    assert found == {"theta_bins": [10], "phi_bins": [], "backgrounds": ["bg/train/a.png"],
                     "textures": ["rust/train/a.png"]}  # fmt: skip
    # A factor that is off (controlled) shares its one setting by design: not a leak
    assert leaks(train, leaky, ()) == {}


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["witness_mark", "electrical_insulator"])  # day and night, all factors on
def test_rendered_splits_do_not_leak(scenario: str, assets: Path, tmp_path: Path) -> None:
    data = tiny_params_dict(n_train=8, n_test_good=4, n_test_defective=4, shard_size=8)
    data["smoke"]["render"]["assets_dir"] = str(assets)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    params = load_params(tmp_path / "params.yaml")
    render_dataset(params, "main", scenario, tmp_path / "renders", progress=False)
    stats = dataset_stats(tmp_path / "renders", "main", scenario)
    assert stats["factors"] == ["uv", "ub", "us"]
    assert stats["leak_free"], stats["leaks"]
    assert set(stats["leaks"]) == {"theta_bins", "phi_bins", "backgrounds", "textures"}
    assert stats["train"]["backgrounds"] > 1 and stats["train"]["textures"] > 1
