import pytest

from miad import assets
from tests.conftest import REPO


def test_build_is_deterministic_and_matches_data_dvc(tmp_path):
    assets.build(tmp_path / "a")
    assets.build(tmp_path / "b")
    assert assets.listing(tmp_path / "a") == assets.listing(tmp_path / "b")
    assets.check(tmp_path / "a", REPO / "data.dvc")


def test_pools_are_disjoint_and_complete(tmp_path):
    names = assets.build(tmp_path / "a")
    train = {n for n in names if "/train/" in n}
    test = {n for n in names if "/test/" in n}
    assert train and test and not train & test and len(train) + len(test) == len(names)
    payloads = {}
    for name in names:
        payloads.setdefault((tmp_path / "a" / name).read_bytes(), []).append(name)
    assert all(len(v) == 1 for v in payloads.values())  # no image appears in two pools


def test_mismatch_names_the_files(tmp_path):
    root = tmp_path / "a"
    assets.build(root)
    (root / "backgrounds/train/bg_000.png").write_bytes(b"x")
    (root / "textures/rust/test/rust_001.png").unlink()
    (root / "extra.txt").write_text("x")
    with pytest.raises(assets.AssetMismatchError) as info:
        assets.check(root, REPO / "data.dvc")
    text = str(info.value)
    assert "differs: backgrounds/train/bg_000.png" in text
    assert "missing: textures/rust/test/rust_001.png" in text
    assert "unexpected: extra.txt" in text
