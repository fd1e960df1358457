"""Per-image and per-tensor digests: recorded deterministically, independent of PNG encoding, and compared with a
workspace (which images or tensors differ, and by how much given the reference's own files)."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import save_file

from miad.cli import main
from miad.data.shards import IndexEntry, write_shard
from miad.hashing import bytes_sha256, file_sha256
from miad.reporting.digests import (
    DigestError,
    digest_array,
    locked_outputs,
    machine_summary,
    model_digests,
    parse_renders,
    record,
    render_digests,
    renders_tsv,
)
from miad.reporting.digests_compare import (
    PixelDiff,
    compare_models,
    compare_renders,
    measure_pixels,
    measure_weights,
    pixel_diff,
)
from tests.project_copy import REPO

SIZE = 16
DATASET = "main/electrical_insulator"


def picture(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A noise image and, for odd seeds, a defect mask."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 200, (SIZE, SIZE, 3), dtype=np.uint8)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    if seed % 2:
        mask[4:8, 4:8] = 255
    return image, mask


def png(array: np.ndarray, compression: int) -> bytes:
    pixels = cv2.cvtColor(array, cv2.COLOR_RGB2BGR) if array.ndim == 3 else array
    return cv2.imencode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, compression])[1].tobytes()


def write_dataset(renders: Path, dataset: str, images: dict[str, tuple[np.ndarray, np.ndarray]], compression=3):
    """Shards of two images each per split, written with the project's write_shard; `images` by `split/stem`."""
    by_split: dict[str, list[tuple[IndexEntry, bytes, bytes]]] = {}
    for item, (image, mask) in sorted(images.items()):
        split, stem = item.split("/")
        image_png, mask_png = png(image, compression), png(mask, compression)
        label = int(mask.any())
        kind = "crack" if label else "good"
        entry = IndexEntry(stem, split, label, kind, 0, bytes_sha256(image_png), bytes_sha256(mask_png), {})
        by_split.setdefault(split, []).append((entry, image_png, mask_png))
    for split, items in by_split.items():
        for number in range(0, len(items), 2):
            shard = renders / dataset / split / f"shard-{number // 2:05d}.zip"
            write_shard(shard, {"spec_hash": "test"}, items[number : number + 2])


def images(count: int = 5) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {f"{'train' if i < 3 else 'test'}/img_{i:03d}": picture(i) for i in range(count)}


def write_model(folder: Path, tensors: dict[str, torch.Tensor]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "model.safetensors"))
    (folder / "config.json").write_text("{}\n", encoding="utf-8")


def weights() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {"encoder.weight": torch.randn(3, 4, generator=generator), "encoder.bias": torch.zeros(4)}


@pytest.fixture
def reference(tmp_path: Path) -> Path:
    """A clone with renders (two datasets) and two checkpoints, its digests recorded in results/reference/."""
    clone = tmp_path / "reference"
    write_dataset(clone / "renders", DATASET, images())
    write_dataset(clone / "renders", "uv/electrical_insulator", images(2))
    write_model(clone / "models" / "rd" / "main" / "electrical_insulator", weights())
    write_model(clone / "models_size" / "rd" / "main" / "electrical_insulator" / "f0.5", weights())
    record(clone, clone / "results" / "reference")
    return clone


def workspace_like(reference: Path, tmp_path: Path, changed: dict | None = None, drop=(), add=None) -> Path:
    """Another clone: the reference's renders, some images changed, dropped or added; the same checkpoints."""
    clone = tmp_path / "workspace"
    pictures = {**images(), **(changed or {}), **(add or {})}
    write_dataset(clone / "renders", DATASET, {k: v for k, v in pictures.items() if k not in drop})
    write_dataset(clone / "renders", "uv/electrical_insulator", images(2))
    for folder in ("models", "models_size"):
        shutil.copytree(reference / folder, clone / folder)
    return clone


def compare(workspace: Path, reference: Path, *extra: str) -> list[str]:
    digests = ["--digests", str(reference / "results" / "reference")]
    return ["compare", "--workspace", str(workspace), *digests, "--no-progress", *extra]


# --- digests ----------------------------------------------------------------------------------------------------


def test_digests_follow_pixels_not_png_bytes(tmp_path: Path):
    write_dataset(tmp_path / "a", DATASET, images(), compression=0)
    write_dataset(tmp_path / "b", DATASET, images(), compression=9)
    shard = Path(DATASET) / "train" / "shard-00000.zip"
    assert file_sha256(tmp_path / "a" / shard) != file_sha256(tmp_path / "b" / shard)  # other PNG bytes
    rows = render_digests(tmp_path / "a")
    assert rows == render_digests(tmp_path / "b") and len(rows) == 5
    assert [r.item for r in rows] == ["test/img_003", "test/img_004", "train/img_000", "train/img_001", "train/img_002"]
    image, mask = picture(1)
    assert rows[3].image == digest_array(image) and rows[3].mask == digest_array(mask) and len(rows[3].image) == 16
    flat = image.reshape(SIZE, SIZE * 3)  # the same bytes in another shape or dtype are another array
    assert len({digest_array(image), digest_array(flat), digest_array(image.view(np.int8))}) == 3


def test_record_writes_sorted_deterministic_files(reference: Path, tmp_path: Path):
    out = reference / "results" / "reference"
    text = (out / "renders.tsv").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == "dataset\tsplit/stem\timage\tmask" and len(lines) == 1 + 5 + 2
    assert lines[1:] == sorted(lines[1:]) and lines[1].startswith(f"{DATASET}\ttest/img_003\t")
    assert parse_renders(text, "renders.tsv") == render_digests(reference / "renders")
    models = (out / "models.tsv").read_text(encoding="utf-8").splitlines()
    assert models[0] == "model\ttensor\tdigest" and len(models) == 5
    assert models[1].startswith("models/rd/main/electrical_insulator\tencoder.bias\t")
    assert models[3].startswith("models_size/rd/main/electrical_insulator/f0.5\tencoder.bias\t")
    again = tmp_path / "again"
    record(reference, again)
    for name in ("renders.tsv", "models.tsv"):
        assert (again / name).read_bytes() == (out / name).read_bytes()
    assert "recorded_by" in json.loads((out / "machine.json").read_text()) and renders_tsv([]).count("\n") == 1


def test_tensor_digests_follow_dtype_shape_and_values(tmp_path: Path):
    base = {"w": torch.arange(6, dtype=torch.float32)}
    variants = {
        "same": base,
        "shape": {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)},
        "dtype": {"w": torch.arange(6, dtype=torch.int32)},
        "value": {"w": torch.arange(6, dtype=torch.float32) + torch.tensor([0, 0, 0, 0, 0, 1e-6])},
    }
    write_model(tmp_path / "models" / "base", base)
    for name, tensors in variants.items():
        write_model(tmp_path / "models" / name, tensors)
    digests = {r.model.split("/")[1]: r.digest for r in model_digests(tmp_path)}
    assert digests["same"] == digests["base"]
    assert len({digests[name] for name in ("base", "shape", "dtype", "value")}) == 4


def test_machine_summary_groups_environments_with_counts(tmp_path: Path):
    run = {"cpu": {"model": "AMD EPYC", "flags": ["avx2"], "cores": 2}, "libc": "glibc 2.36", "pinned": True}
    other = {**run, "libc": "glibc 2.41", "cpu": {**run["cpu"], "cores": 64}}
    sidecars = {
        "renders/main/x/provenance.json": [run, run],
        "models/rd/main/x/provenance.json": [{**run, "cpu": {**run["cpu"], "cores": 8}, "command": ["miad"]}],
        "results/runs/rd/main/x.json.provenance.json": [other],
    }
    for name, runs in sidecars.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(json.dumps({"runs": runs}))
    (tmp_path / "models" / "rd" / "broken.provenance.json").write_text("{")
    summary = machine_summary(tmp_path)
    first, second = summary["environments"]
    assert first["runs"] == 3 and first["outputs"] == {"renders": 2, "models": 1} and first["libc"] == "glibc 2.36"
    assert second["runs"] == 1 and second["libc"] == "glibc 2.41" and "glibc 2.41" in second["line"]
    assert summary["unreadable_sidecars"] == ["models/rd/broken.provenance.json"]
    assert summary["recorded_by"]["libc"] and list(json.dumps(summary, sort_keys=True))  # JSON-ready


# --- comparing renders ------------------------------------------------------------------------------------------


def test_identical_workspace_exits_0(reference: Path, tmp_path: Path, capsys):
    workspace = workspace_like(reference, tmp_path)
    assert main(compare(workspace, reference, "--renders", "--models")) == 0
    out = capsys.readouterr().out
    assert "renders: 7 images in 2 datasets; 7 identical, 0 differ, 0 missing" in out
    assert "models: 2 checkpoints (4 tensors); 2 identical, 0 differ, 0 missing" in out
    assert "renders: IDENTICAL" in out and "models: IDENTICAL" in out


def test_one_pixel_changed_is_named_with_max_diff_and_psnr(reference: Path, tmp_path: Path, capsys):
    image, mask = picture(3)
    image = image.copy()
    image[5, 7, 1] += 1
    workspace = workspace_like(reference, tmp_path, {"test/img_003": (image, mask)})
    assert main(compare(workspace, reference, "--renders")) == 1
    out = capsys.readouterr().out
    assert "7 images in 2 datasets; 6 identical, 1 differ (image only, pixels not measured), 0 missing" in out
    assert "test/img_003" in out and "pixel differences need the reference images" in out and "dvc get" in out
    assert main(compare(workspace, reference, "--renders", "--against", str(reference))) == 1
    out = capsys.readouterr().out
    psnr = 10 * math.log10(255**2 * SIZE * SIZE * 3)  # one value off by 1: MSE = 1 / (16 * 16 * 3)
    assert f"1 differ (other bits, same picture: max |diff| 1, PSNR {psnr:.1f} dB), 0 missing" in out
    assert "pixel differences need" not in out and "renders: DIFFERENT" in out
    row = next(line for line in out.splitlines() if "test/img_003" in line)
    assert row.split()[2:8] == ["other", "bits,", "same", "picture", "1", f"{psnr:.1f}"] and "0.39%" in row
    comparison = compare_renders(render_digests(workspace / "renders"), render_digests(reference / "renders"))
    (change,) = measure_pixels(comparison, workspace / "renders", reference / "renders").changes
    assert change.image == PixelDiff(1, pytest.approx(psnr, abs=1e-9), 1 / SIZE**2) and change.mask is not None
    assert pixel_diff(image, image) == PixelDiff(0, math.inf, 0.0) and pixel_diff(image, mask) is None


def test_a_changed_mask_is_another_dataset(reference: Path, tmp_path: Path):
    image, mask = picture(1)
    mask = mask.copy()
    mask[8, 4:8] = 255  # the defect grew by four pixels; the image is the same
    workspace = workspace_like(reference, tmp_path, {"train/img_001": (image, mask)})
    reference_rows = render_digests(reference / "renders")
    comparison = compare_renders(render_digests(workspace / "renders"), reference_rows)
    (change,) = comparison.changes
    assert change.kind == "mask differs" and change.ours.image == change.reference.image
    measured = measure_pixels(comparison, workspace / "renders", reference / "renders")
    (change,) = measured.changes
    assert change.kind == "mask differs" and change.mask.changed == 4 / SIZE**2 and change.image.max_abs == 0
    from miad.reporting.digests_report import format_renders

    text = format_renders(measured, "ref", against="ref")
    assert "1 differ (mask differs: another dataset)" in text and "1.56%" in text


def test_a_repainted_or_resized_image_is_another_picture(reference: Path, tmp_path: Path):
    from miad.reporting.digests_report import format_renders

    small = (picture(1)[0][:8, :8].copy(), picture(1)[1])  # another image size, the same mask
    workspace = workspace_like(reference, tmp_path, {"train/img_000": (picture(10)[0], picture(0)[1])})
    write_dataset(workspace / "renders", "uv/electrical_insulator", {**images(2), "train/img_001": small})
    comparison = compare_renders(render_digests(workspace / "renders"), render_digests(reference / "renders"))
    repainted, resized = measure_pixels(comparison, workspace / "renders", reference / "renders").changes
    assert repainted.kind == "another picture" and repainted.image.psnr < 20 and repainted.image.max_abs > 100
    assert resized.kind == "another picture" and resized.image is None and "shape [8, 8, 3]" in resized.note
    text = format_renders(replace(comparison, changes=(repainted, resized), measured=True), "ref", against="ref")
    assert "2 differ (another picture: max |diff| " in text and "shape [8, 8, 3], reference [16, 16, 3]" in text
    alone = format_renders(replace(comparison, changes=(resized,), measured=True), "ref", against="ref")
    assert "1 differ (another picture), 0 missing" in alone


def test_missing_and_extra_images_are_counted(reference: Path, tmp_path: Path, capsys):
    extra = {"test/img_099": picture(99)}
    workspace = workspace_like(reference, tmp_path, drop=("train/img_002", "test/img_004"), add=extra)
    write_dataset(workspace / "renders", "main/witness_mark", images(3))  # a dataset the reference lacks
    comparison = compare_renders(render_digests(workspace / "renders"), render_digests(reference / "renders"))
    counts = {d.dataset: d for d in comparison.datasets}
    assert (counts[DATASET].identical, counts[DATASET].missing, counts[DATASET].extra) == (3, 2, 1)
    assert counts["uv/electrical_insulator"].identical == 2 and comparison.unjudged == {"main/witness_mark": 3}
    assert main(compare(workspace, reference, "--renders", "--show", "1")) == 1
    out = capsys.readouterr().out
    assert "5 identical, 0 differ, 2 missing, 1 extra" in out and "... and 1 more" in out
    assert "test/img_099" in out and "main/witness_mark (3 images)" in out


def test_a_dataset_only_you_have_is_not_judged(reference: Path, tmp_path: Path, capsys):
    workspace = workspace_like(reference, tmp_path)
    write_dataset(workspace / "renders", "main/witness_mark", images(1))
    assert main(compare(workspace, reference, "--renders")) == 0
    assert "datasets only you have (not judged): main/witness_mark (1 image)" in capsys.readouterr().out


# --- comparing models -------------------------------------------------------------------------------------------


def test_a_changed_tensor_is_named_with_its_max_abs_difference(reference: Path, tmp_path: Path, capsys):
    workspace = workspace_like(reference, tmp_path)
    changed = weights()
    changed["encoder.weight"][1, 2] += 0.25
    changed["encoder.weight"][0, 0] -= 0.125
    folder = "models/rd/main/electrical_insulator"
    write_model(workspace / folder, changed)
    assert main(compare(workspace, reference, "--models")) == 1
    out = capsys.readouterr().out
    assert "models: 2 checkpoints (4 tensors); 1 identical, 1 differ (1 differing tensor), 0 missing" in out
    assert f"{folder}:\n    differ: encoder.weight" in out and "weight differences need" in out
    assert main(compare(workspace, reference, "--models", "--against", str(reference))) == 1
    out = capsys.readouterr().out
    assert "1 differ (1 differing tensor, max |diff| 0.25)" in out and "worst: encoder.weight 0.25" in out
    ours, theirs = model_digests(workspace), model_digests(reference)
    measured = measure_weights(compare_models(ours, theirs), theirs, workspace, reference)
    (checkpoint,) = measured.changed
    assert checkpoint.model == folder and checkpoint.max_abs == pytest.approx(0.25)


def test_missing_tensors_and_checkpoints_are_counted(reference: Path, tmp_path: Path, capsys):
    workspace = workspace_like(reference, tmp_path)
    shutil.rmtree(workspace / "models_size")
    write_model(workspace / "models/rd/main/electrical_insulator", {"encoder.weight": weights()["encoder.weight"]})
    write_model(workspace / "models/ae/main/electrical_insulator", weights())  # only ours: not judged
    comparison = compare_models(model_digests(workspace), model_digests(reference))
    assert comparison.missing == ("models_size/rd/main/electrical_insulator/f0.5",)
    assert comparison.unjudged == ("models/ae/main/electrical_insulator",)
    (checkpoint,) = comparison.changed
    assert [(t.tensor, t.status) for t in checkpoint.changes] == [("encoder.bias", "missing")]
    assert main(compare(workspace, reference, "--models")) == 1
    out = capsys.readouterr().out
    assert "missing tensors: encoder.bias" in out and "checkpoints missing from yours (1)" in out


# --- the command line -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dataset\tstem\timage\tmask\n", "line 1: expected the header"),
        ("dataset\tsplit/stem\timage\tmask\nmain/x\ttest/a\t0123456789abcdef\n", "line 2: expected 4"),
        ("dataset\tsplit/stem\timage\tmask\nmain/x\ttest/a\t0123456789ABCDEF\t0123456789abcdef\n", "'0123456789ABC"),
        ("dataset\tsplit/stem\timage\tmask\n" + "main/x\ttest/a\t0123456789abcdef\t0123456789abcdef\n" * 2, "twice"),
    ],
)
def test_a_bad_reference_file_is_named_and_exits_2(reference, tmp_path, capsys, text, message):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "renders.tsv").write_text(text, encoding="utf-8")
    assert main(["compare", "--renders", "--workspace", str(reference), "--digests", str(bad), "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and f"{bad / 'renders.tsv'}" in captured.err and message in captured.err


def test_bad_input_exits_2_and_writes_nothing(reference: Path, tmp_path: Path, capsys):
    shard = reference / "renders" / DATASET / "train" / "shard-00000.zip"
    shard.write_bytes(shard.read_bytes()[:100])  # truncated
    out = tmp_path / "out"
    assert main(["reference", "record", "--workspace", str(reference), "--out", str(out), "--no-progress"]) == 2
    assert "shard-00000.zip" in capsys.readouterr().err and not out.exists()
    assert main(compare(reference, reference, "--renders", "--against", str(tmp_path / "nowhere"))) == 2
    assert "nowhere: no such folder" in capsys.readouterr().err
    assert main(compare(reference, reference, "--models", "--against", str(tmp_path))) == 2
    assert "holds neither models/ nor models_size/" in capsys.readouterr().err
    assert main(compare(reference, tmp_path, "--renders")) == 2  # no digests recorded there
    assert "no such reference file" in capsys.readouterr().err
    assert main(compare(reference, reference, "--renders", "--exact")) == 2
    assert main(compare(reference, reference, "--against", str(reference))) == 2  # metrics have no --against
    assert main(compare(reference, reference, "--renders", "--show", "-1")) == 2
    assert "--against applies to --renders" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["reference", "record", "--workspace", str(empty), "--out", str(out)]) == 2
    assert "nothing to record" in capsys.readouterr().err and not out.exists()
    with pytest.raises(DigestError, match="nothing to record"):
        record(empty, out)


def test_an_unreadable_checkpoint_is_named_and_nothing_written(reference: Path, tmp_path: Path, capsys):
    checkpoint = reference / "models_size" / "rd" / "main" / "electrical_insulator" / "f0.5" / "model.safetensors"
    checkpoint.write_bytes(b"not a safetensors file")  # read after every shard: renders.tsv is ready by then
    out = tmp_path / "out"
    assert main(["reference", "record", "--workspace", str(reference), "--out", str(out), "--no-progress"]) == 2
    assert f"{checkpoint}: unreadable checkpoint" in capsys.readouterr().err and not out.exists()


def test_record_then_compare_at_a_git_revision(reference: Path, capsys):
    git = ["-c", "user.email=t@t", "-c", "user.name=t"]
    for command in (["init", "-q"], ["add", "results"], [*git, "commit", "-qm", "reference digests"]):
        subprocess.run(["git", *command], cwd=reference, check=True)
    write_dataset(reference / "renders", DATASET, {**images(), "test/img_003": picture(30)})
    assert (
        main(["reference", "record", "--workspace", str(reference), "--out", str(reference / "results/reference")]) == 0
    )
    assert "7 images (2 datasets)" in capsys.readouterr().err
    assert main(compare(reference, reference, "--renders")) == 0  # the working tree's digests: just recorded
    capsys.readouterr()
    assert main(compare(reference, reference, "--renders", "--reference", "HEAD")) == 1
    out = capsys.readouterr().out
    assert "renders.tsv at git revision HEAD" in out and "test/img_003" in out and "1 differ" in out
    assert main(compare(reference, reference, "--renders", "--reference", "no-such-rev")) == 2
    assert "no-such-rev" in capsys.readouterr().err


def test_help_explains_digests(capsys):
    for argv in (["compare", "--help"], ["reference", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
    out = capsys.readouterr().out
    assert "--renders" in out and "--against DIR" in out and "Exit status" in out and "machine.json" in out


def test_the_committed_reference_describes_the_committed_outputs():
    """results/reference was recorded from the renders and models dvc.lock records: a pipeline rerun committed
    without `miad reference record` fails here."""
    summary = json.loads((REPO / "results" / "reference" / "machine.json").read_text(encoding="utf-8"))
    locked = locked_outputs(REPO)
    assert locked and any(path.startswith("renders/") for path in locked)
    stale = sorted(p for p in locked.keys() | summary["dvc_lock"].keys() if summary["dvc_lock"].get(p) != locked.get(p))
    assert stale == [], f"results/reference is stale for {stale[:5]}: run `miad reference record` and commit it"


def test_record_keeps_the_dvc_hashes_of_what_it_digested(reference: Path, tmp_path: Path):
    lock = {
        "schema": "2.0",
        "stages": {
            "render": {"cmd": "x", "outs": [{"path": f"renders/{DATASET}", "md5": "ab12.dir"}]},
            "report": {"cmd": "y", "outs": [{"path": "results/metrics.json", "md5": "cd34"}]},
        },
    }
    (reference / "dvc.lock").write_text(yaml.safe_dump(lock), encoding="utf-8")
    out = tmp_path / "out"
    record(reference, out)
    assert json.loads((out / "machine.json").read_text())["dvc_lock"] == {f"renders/{DATASET}": "ab12.dir"}
    (reference / "dvc.lock").write_text("stages: [", encoding="utf-8")
    with pytest.raises(DigestError, match=r"dvc\.lock"):
        record(reference, tmp_path / "other")
    assert not (tmp_path / "other").exists()
