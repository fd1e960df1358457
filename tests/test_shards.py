"""Shard format, manifests, the Dataset, verify and export, on shards made by the fake renderer."""

import zipfile
from pathlib import Path

import numpy as np
import pytest

from miad.data.dataset import ShardDataset
from miad.data.export import export_mvtec
from miad.data.manifest import read_manifest, verify_split
from miad.data.shards import ShardError, decode_png, encode_png, read_index
from miad.render.shard import render_dataset

SCENARIO = "electrical_insulator"


@pytest.fixture
def rendered(tmp_path, tiny_params, fake_factory) -> Path:
    renders = tmp_path / "renders"
    render_dataset(tiny_params, "main", SCENARIO, renders, renderer_factory=fake_factory, progress=False)
    return renders


def test_png_round_trip():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    assert np.array_equal(decode_png(encode_png(image), color=True), image)
    mask = (rng.random((7, 9)) > 0.5).astype(np.uint8) * 255
    assert np.array_equal(decode_png(encode_png(mask), color=False), mask)
    with pytest.raises(ValueError, match="uint8"):
        encode_png(image.astype(np.float32))


def test_index_records_everything(rendered):
    index = read_index(rendered / "main" / SCENARIO / "test" / "shard-00000.zip")
    entry = index.entries[0]
    assert {"camera"} <= set(entry.record)
    assert entry.split == "test" and len(entry.image_sha256) == 64 and index.spec_hash
    manifest = read_manifest(rendered / "main" / SCENARIO / "test")
    assert manifest.count == 6 and manifest.header["label_counts"] == {"0": 3, "1": 3}
    assert manifest.header["defect_counts"] == {"broken_shed": 3, "good": 3}


def test_dataset_reads_shards_directly(rendered):
    train = ShardDataset(rendered / "main" / SCENARIO / "train", verify=True)
    assert len(train) == 5 and train.labels.tolist() == [0] * 5
    assert train[0].image.shape == (48, 48, 3) and train[0].image.dtype == np.uint8
    assert len(train.images[1:3]) == 2
    test = ShardDataset(rendered / "main" / SCENARIO / "test")
    for sample in test:
        assert (sample.mask.max() == 255) == bool(sample.entry.label)
    assert len(ShardDataset(rendered / "main" / SCENARIO / "train", limit=2)) == 2
    with pytest.raises(ValueError, match="limit"):
        ShardDataset(rendered / "main" / SCENARIO / "train", limit=6)


def test_verify_names_corrupt_missing_and_extra_files(rendered):
    split = rendered / "main" / SCENARIO / "train"
    assert verify_split(split) == []
    shard = split / "shard-00001.zip"
    shard.write_bytes(shard.read_bytes()[:-40])  # truncated
    (split / "shard-00000.zip").unlink()
    (split / "stray.txt").write_text("x")
    problems = "\n".join(verify_split(split))
    assert "shard-00000.zip: shard is missing" in problems
    assert "shard-00001.zip: sha256" in problems
    assert "stray.txt: not listed" in problems


def test_verify_finds_a_corrupt_member(rendered):
    split = rendered / "main" / SCENARIO / "train"
    shard = split / "shard-00000.zip"
    with zipfile.ZipFile(shard) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    name = next(n for n in members if n.startswith("images/"))
    members[name] = members[name][:-1] + bytes([members[name][-1] ^ 1])
    with zipfile.ZipFile(shard, "w") as archive:
        for key, data in members.items():
            archive.writestr(key, data)
    assert any(name in p and "does not match index" in p for p in verify_split(split))
    with pytest.raises(ShardError, match="sha256"):
        ShardDataset(split, verify=True)[0]


def test_missing_manifest_is_named(tmp_path):
    with pytest.raises(ShardError, match="manifest is missing"):
        ShardDataset(tmp_path)


def test_export_mvtec_layout(rendered, tmp_path):
    out = tmp_path / "mvtec"
    assert export_mvtec(rendered, "main", [SCENARIO], out) == 11
    root = out / SCENARIO
    assert len(list((root / "train" / "good").glob("*.png"))) == 5
    assert len(list((root / "test" / "good").glob("*.png"))) == 3
    defects = sorted((root / "test" / "broken_shed").glob("*.png"))
    masks = sorted((root / "ground_truth" / "broken_shed").glob("*_mask.png"))
    assert [m.name for m in masks] == [d.stem + "_mask.png" for d in defects] and len(defects) == 3
    with pytest.raises(FileExistsError, match="--force"):
        export_mvtec(rendered, "main", [SCENARIO], out)
