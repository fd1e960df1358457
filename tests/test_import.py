"""`miad import --layout mvtec`: a JPEG MVTec-layout folder imports and evaluates; export then import gives back
the same pixels, masks and metrics; every malformed layout gets its error and leaves nothing half-written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from miad.cli import main
from miad.config import load_params
from miad.data.dataset import ShardDataset
from miad.data.export import export_mvtec
from miad.data.layout import split_dir
from miad.data.manifest import build_manifest, verify_split, write_manifest
from miad.data.shards import IndexEntry, encode_png, write_shard
from miad.hashing import bytes_sha256
from miad.importing.miad_release import scenario_for_class
from miad.importing.mvtec import LayoutError, import_mvtec, scan
from tests.conftest import tiny_params_dict

SCENARIO = "witness_mark"


def blob_image(rng: np.random.Generator, size: tuple[int, int], defect: np.ndarray | None) -> np.ndarray:
    """A noisy grey image; a dark patch where `defect` is set."""
    image = np.clip(rng.normal(150, 20, (*size, 3)), 0, 255).astype(np.uint8)
    if defect is not None:
        image[defect] = 40
    return image


def make_mvtec(root: Path, *, ext: str = ".jpg", size: tuple[int, int] = (40, 48), seed: int = 0) -> Path:
    """An MVTec-layout class folder: 8 train/good, 4 test/good, 3 + 3 defective with PNG masks (MVTec numbering)."""
    rng = np.random.default_rng(seed)
    for split, kind, count in (("train", "good", 8), ("test", "good", 4), ("test", "scratch", 3), ("test", "dent", 3)):
        folder = root / split / kind
        folder.mkdir(parents=True)
        for i in range(count):
            mask = None
            if kind != "good":
                mask = np.zeros(size, dtype=bool)
                r, c = rng.integers(2, size[0] - 10), rng.integers(2, size[1] - 10)
                mask[r : r + 6, c : c + 8] = True
                truth = root / "ground_truth" / kind
                truth.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(truth / f"{i:03d}_mask.png"), mask.astype(np.uint8) * 255)
            bgr = cv2.cvtColor(blob_image(rng, size, mask), cv2.COLOR_RGB2BGR)
            cv2.imwrite(str(folder / f"{i:03d}{ext}"), bgr)
    return root


@pytest.fixture
def params_path(tmp_path: Path) -> Path:
    data = tiny_params_dict(shard_size=5)
    data["smoke"]["train"]["ae"].update(image_size=32, epochs=1, batch_size=4)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def train_and_evaluate(params_path: Path, renders: Path, tmp: Path, model: Path | None = None) -> dict:
    from miad.stages.evaluate import evaluate
    from miad.stages.train import train

    params = load_params(params_path)
    if model is None:
        model = tmp / "model"
        train(params, "ae", "main", [SCENARIO], renders, model)
    return evaluate(params, "ae", "main", SCENARIO, renders, model, tmp / "run.json")


def test_a_jpeg_mvtec_folder_imports_and_evaluates(tmp_path: Path, params_path: Path):
    source = make_mvtec(tmp_path / "src" / "bottle")
    renders = tmp_path / "renders"
    report = import_mvtec(source, renders, "main", SCENARIO, shard_size=5, progress=False)
    assert report.counts == {"train": {"good": 8}, "test": {"dent": 3, "good": 4, "scratch": 3}}
    assert (report.width, report.height) == (48, 40)
    for split in ("train", "test"):
        assert verify_split(split_dir(renders, "main", SCENARIO, split)) == []
    test = ShardDataset(split_dir(renders, "main", SCENARIO, "test"))
    assert len(test) == 10 and test.labels.sum() == 6
    sample = next(s for s in test if s.entry.stem == "scratch_001")  # MVTec numbers each type from 000
    decoded = cv2.cvtColor(cv2.imread(str(source / "test/scratch/001.jpg")), cv2.COLOR_BGR2RGB)
    assert np.array_equal(sample.image, decoded)  # the JPEG's decoded pixels, stored losslessly
    assert set(np.unique(sample.mask)) == {0, 255} and sample.entry.record["defect_pixels"] == 48
    assert sample.entry.record["source"]["file"] == "test/scratch/001.jpg"
    test.close()
    result = train_and_evaluate(params_path, renders, tmp_path)
    assert 0.0 <= result["metrics"]["image_auroc"] <= 1.0 and "intervals" in result["bootstrap"]
    again = tmp_path / "again"
    import_mvtec(source, again, "main", SCENARIO, shard_size=5, progress=False)
    for split in ("train", "test"):  # an import is deterministic, byte for byte
        for path in sorted(split_dir(renders, "main", SCENARIO, split).iterdir()):
            assert (split_dir(again, "main", SCENARIO, split) / path.name).read_bytes() == path.read_bytes()


def write_dataset(renders: Path, rng: np.random.Generator) -> None:
    """A small dataset in our own shard format, as the renderer writes one (stems in render order)."""
    for split, kinds in (("train", ["good"] * 8), ("test", ["good", "misaligned_mark"] * 5)):
        items = []
        for i, kind in enumerate(kinds):
            mask = np.zeros((32, 32), dtype=np.uint8)
            if kind != "good":
                mask[8:14, 10:20] = 255
            image = blob_image(rng, (32, 32), mask > 0)
            image_png, mask_png = encode_png(image), encode_png(mask)
            label = int(kind != "good")
            entry = IndexEntry(f"{split}_{i:06d}", split, label, kind, i, bytes_sha256(image_png),
                               bytes_sha256(mask_png), {"defect_pixels": int(np.count_nonzero(mask))})  # fmt: skip
            items.append((entry, image_png, mask_png))
        directory = split_dir(renders, "main", SCENARIO, split)
        write_shard(directory / "shard-00000.zip", {"spec_hash": "x"}, items)
        header = {"variant": "main", "scenario": SCENARIO, "split": split, "resolution": 32, "factors": []}
        write_manifest(directory, build_manifest(directory, header, ["shard-00000.zip"]))


def test_export_then_import_gives_the_same_pixels_masks_and_metrics(tmp_path: Path, params_path: Path):
    original = tmp_path / "renders"
    write_dataset(original, np.random.default_rng(1))
    export_mvtec(original, "main", [SCENARIO], tmp_path / "mvtec")
    back = tmp_path / "back"
    import_mvtec(tmp_path / "mvtec" / SCENARIO, back, "main", SCENARIO, shard_size=4, progress=False)
    for split in ("train", "test"):
        before = ShardDataset(split_dir(original, "main", SCENARIO, split))
        after = ShardDataset(split_dir(back, "main", SCENARIO, split))
        assert [e.stem for e in after.entries] == [e.stem for e in before.entries]  # names and order kept
        for a, b in zip(before, after, strict=True):
            assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
            assert (a.entry.label, a.entry.defect_type) == (b.entry.label, b.entry.defect_type)
            assert a.entry.image_sha256 == b.entry.image_sha256
        before.close()
        after.close()
    first = train_and_evaluate(params_path, original, tmp_path / "a")
    second = train_and_evaluate(params_path, back, tmp_path / "b", model=tmp_path / "a" / "model")
    assert first["metrics"] == second["metrics"]
    assert first["bootstrap"]["intervals"] == second["bootstrap"]["intervals"]


def break_layout(root: Path, how: str) -> str:
    """Damage a valid class folder one way; return the message expected."""
    if how == "missing mask":
        (root / "ground_truth/dent/001_mask.png").unlink()
        return r"test/dent/001\.jpg: defective image without a mask"
    if how == "stray mask":
        shutil.copy(root / "ground_truth/dent/001_mask.png", root / "ground_truth/dent/009_mask.png")
        return r"ground_truth/dent/009_mask\.png: stray mask"
    if how == "unknown extension":
        (root / "train/good/008.bmp").write_bytes(b"BM")
        return r"train/good/008\.bmp: unknown extension '\.bmp'"
    if how == "stray file":
        (root / "notes.txt").write_text("hello")
        return r"notes\.txt: stray file"
    if how == "train defect":
        shutil.copytree(root / "test/dent", root / "train/dent")
        return r"train/dent: the train split holds good images only"
    if how == "one stem twice":
        shutil.copy(root / "test/good/001.jpg", root / "test/good/001.png")
        return r"test/good/001\.jpg: another image in .* has the stem '001'"
    if how == "empty class":
        shutil.rmtree(root / "train/good")
        (root / "train/good").mkdir()
        return r"empty class: no good training images"
    raise AssertionError(how)


@pytest.mark.parametrize(
    "how",
    ["missing mask", "stray mask", "unknown extension", "stray file", "train defect", "one stem twice", "empty class"],
)
def test_each_malformed_layout_is_named_and_nothing_is_written(tmp_path: Path, how: str):
    source = make_mvtec(tmp_path / "cls")
    message = break_layout(source, how)
    with pytest.raises(LayoutError, match=message):
        scan(source)
    with pytest.raises(LayoutError, match=message):
        import_mvtec(source, tmp_path / "renders", "main", SCENARIO, shard_size=5, progress=False)
    assert not (tmp_path / "renders" / "main" / SCENARIO).exists()


def test_size_mismatches_and_empty_masks_keep_the_previous_dataset(tmp_path: Path):
    source = make_mvtec(tmp_path / "cls")
    renders = tmp_path / "renders"
    import_mvtec(source, renders, "main", SCENARIO, shard_size=5, progress=False)
    before = {p: p.read_bytes() for p in sorted((renders / "main" / SCENARIO).rglob("*")) if p.is_file()}
    cv2.imwrite(str(source / "ground_truth/scratch/002_mask.png"), np.zeros((20, 20), np.uint8))
    with pytest.raises(LayoutError, match=r"002_mask\.png: mask of 20x20 px for an image of 48x40 px"):
        import_mvtec(source, renders, "main", SCENARIO, shard_size=5, progress=False)
    cv2.imwrite(str(source / "ground_truth/scratch/002_mask.png"), np.zeros((40, 48), np.uint8))
    with pytest.raises(LayoutError, match=r"002_mask\.png: all zero, but test/scratch/002\.jpg is a defective image"):
        import_mvtec(source, renders, "main", SCENARIO, shard_size=5, progress=False)
    cv2.imwrite(str(source / "ground_truth/scratch/002_mask.png"), np.full((40, 48), 255, np.uint8))
    cv2.imwrite(str(source / "test/good/003.jpg"), np.zeros((30, 30, 3), np.uint8))
    with pytest.raises(LayoutError, match=r"test/good/003\.jpg: 30x30 px, but the class's first image is 48x40"):
        import_mvtec(source, renders, "main", SCENARIO, shard_size=5, progress=False)
    after = {p: p.read_bytes() for p in sorted((renders / "main" / SCENARIO).rglob("*")) if p.is_file()}
    assert after == before
    assert not [p for p in renders.rglob("*") if ".tmp" in p.name]


def test_miad_class_names_map_to_scenarios():
    assert scenario_for_class("Electrical Insulator") == "electrical_insulator"
    assert scenario_for_class("nut-and-bolt") == "nut_and_bolt"
    assert scenario_for_class("witness_mark") == "witness_mark"
    assert scenario_for_class("bottle") is None


def test_cli_import_check_and_errors(tmp_path: Path, params_path: Path, capsys):
    source = make_mvtec(tmp_path / "Witness Mark", ext=".png")
    renders = tmp_path / "renders"
    common = ["--params", str(params_path), "--renders", str(renders)]
    assert main(["import", "--layout", "mvtec", str(source), "--check", *common]) == 0
    assert "importable as witness_mark" in capsys.readouterr().out
    assert not renders.exists()
    assert main(["import", "--layout", "mvtec", str(source), "--no-progress", *common]) == 0  # the name says it
    manifest = json.loads((split_dir(renders, "main", SCENARIO, "test") / "manifest.json").read_text())
    assert manifest["source"] == {"layout": "mvtec", "root": str(source)} and manifest["factors"] == []
    other = make_mvtec(tmp_path / "bottle")
    assert main(["import", "--layout", "mvtec", str(other), *common]) == 2
    assert "'bottle' is not one of MIAD's class names" in capsys.readouterr().err
    (other / "stray.txt").write_text("x")
    assert main(["import", "--layout", "mvtec", str(other), "--scenario", "metal_welding", *common]) == 2
    assert "stray.txt: stray file" in capsys.readouterr().err
    assert main(["import", "--layout", "mvtec", str(tmp_path / "nowhere"), "--scenario", SCENARIO, *common]) == 2
