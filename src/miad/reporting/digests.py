"""Fingerprints of renders and models, kept in git: what `miad reference record` writes, and how to read it back.

`miad reference record` writes three files into results/reference/:
- renders.tsv: one row per image: dataset (`<variant>/<scenario>`), `<split>/<stem>`, and the digests of the
  decoded image and of the decoded mask;
- models.tsv: one row per tensor of every checkpoint under models/ and models_size/: the checkpoint folder,
  the tensor's name and its digest;
- machine.json: the environments that made those outputs (from their provenance sidecars, with counts), the
  machine that recorded the digests (informational: never compared bit for bit) and, under `dvc_lock`, the DVC
  hash dvc.lock held for each render and model folder when they were recorded: a test checks them against the
  committed dvc.lock, so a pipeline rerun committed without `miad reference record` is caught.

A digest is the first 16 hex characters (64 bits) of a sha256 over an array's dtype, shape and bytes. Pixels are
hashed after decoding, so a PNG written with another zlib or compression level keeps its digest; only other pixels
change it. 64 bits instead of 256 keep renders.tsv at about 80 bytes a row (some 18 MB at paper scale, 15 datasets
x 15,000 images, against 40 MB with full hashes) while a chance collision among those 225,000 images stays below
1e-8 (n^2 / 2^65). The files are sorted, tab-separated, with a header line and "\n" line ends: the same renders
and models give byte-identical files on every machine, and `git diff` names each image or tensor that changed.

Comparing them with a workspace's: `miad.reporting.digests_compare`; the text `miad compare` prints:
`miad.reporting.digests_report`.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from tqdm import tqdm

from miad.atomic import write_json_atomic, write_text_atomic
from miad.data.layout import dataset_key
from miad.data.shards import IndexEntry, ShardError, ShardReader, read_index
from miad.numeric_env import PROVENANCE_NAME, describe, environment_line
from miad.reporting.compare import CompareError, read_at_revision

DIGEST_CHARS = 16  # 64 bits of sha256 (see the module docstring)
RENDERS_FILE, MODELS_FILE, MACHINE_FILE = "renders.tsv", "models.tsv", "machine.json"
RENDERS_HEADER = ("dataset", "split/stem", "image", "mask")
MODELS_HEADER = ("model", "tensor", "digest")
MODEL_ROOTS = ("models", "models_size")  # folders holding checkpoint folders, relative to the workspace
SIDECAR_ROOTS = ("renders", "models", "models_size", "results/runs", "results/runs_size")  # + metrics.json's
DIGEST = re.compile(f"[0-9a-f]{{{DIGEST_CHARS}}}")


class DigestError(CompareError):
    """A digest file, shard, checkpoint or folder that cannot be read or used; the message names it."""


def _digest(header: str, data: bytes | memoryview) -> str:
    hasher = hashlib.sha256(header.encode("utf-8"))
    hasher.update(data)
    return hasher.hexdigest()[:DIGEST_CHARS]


def digest_array(array: np.ndarray) -> str:
    """The digest of decoded pixels: sha256 of dtype, shape and bytes, 16 hex characters."""
    array = np.ascontiguousarray(array)
    return _digest(f"{array.dtype.str} {list(array.shape)}\n", memoryview(array).cast("B"))


# --- renders ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class ImageDigest:
    dataset: str  # `<variant>/<scenario>`, e.g. main/electrical_insulator
    item: str  # `<split>/<stem>`, e.g. test/test_000003
    image: str
    mask: str


def _shards(renders: Path) -> list[Path]:
    return sorted(Path(renders).glob("*/*/*/shard-*.zip"))  # <variant>/<scenario>/<split>/shard-NNNNN.zip


def _place(shard: Path) -> tuple[str, str]:
    """(dataset, split) of a shard from its folders."""
    return dataset_key(shard.parent.parent.parent.name, shard.parent.parent.name), shard.parent.name


def _read(reader: ShardReader, entry: IndexEntry) -> tuple[np.ndarray, np.ndarray]:
    try:
        return reader.read(entry)
    except (ShardError, KeyError, zipfile.BadZipFile, OSError) as exc:
        raise DigestError(f"{reader.path}!{entry.image_member}: unreadable image or mask ({exc})") from None


def render_digests(renders: Path, *, progress: bool = False) -> list[ImageDigest]:
    """A digest row for every image of every shard under `renders`, sorted."""
    rows: dict[tuple[str, str], ImageDigest] = {}
    for shard in tqdm(_shards(renders), desc="render digests", unit="shard", disable=not progress, dynamic_ncols=True):
        dataset, split = _place(shard)
        reader = ShardReader(shard)
        try:
            for entry in reader.index.entries:
                image, mask = _read(reader, entry)
                row = ImageDigest(dataset, f"{split}/{entry.stem}", digest_array(image), digest_array(mask))
                if (dataset, row.item) in rows:
                    raise DigestError(f"{shard}: {dataset} {row.item} is in another shard of {shard.parent} too")
                rows[(dataset, row.item)] = row
        finally:
            reader.close()
    return sorted(rows.values())


class RendersFolder:
    """The images of one renders folder, found by dataset and `<split>/<stem>` (shard indexes read lazily)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._where: dict[tuple[str, str], dict[str, tuple[Path, IndexEntry]]] = {}
        self._readers: dict[Path, ShardReader] = {}

    def read(self, dataset: str, item: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(image, mask) decoded, or None when the folder lacks the image."""
        split, _, stem = item.partition("/")
        if (dataset, split) not in self._where:
            variant, _, scenario = dataset.partition("/")
            found = {}
            for shard in sorted((self.root / variant / scenario / split).glob("shard-*.zip")):
                found.update({entry.stem: (shard, entry) for entry in read_index(shard).entries})
            self._where[(dataset, split)] = found
        if stem not in self._where[(dataset, split)]:
            return None
        shard, entry = self._where[(dataset, split)][stem]
        if shard not in self._readers:
            self._readers[shard] = ShardReader(shard)
        return _read(self._readers[shard], entry)

    def close(self) -> None:
        for reader in self._readers.values():
            reader.close()


# --- models -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class TensorDigest:
    model: str  # the checkpoint folder relative to the workspace, e.g. models/rd/main/electrical_insulator
    tensor: str
    digest: str


def checkpoint_folders(workspace: Path, roots: Sequence[str] = MODEL_ROOTS) -> list[str]:
    """Every folder holding a model.safetensors under `roots`, relative to `workspace` (atomic temp folders,
    whose names start with a dot, are skipped)."""
    from miad.methods.base import MODEL_FILE

    found = []
    for root in roots:
        for path in sorted((Path(workspace) / root).rglob(MODEL_FILE)):
            folder = path.parent.relative_to(workspace)
            if not any(part.startswith(".") for part in folder.parts):
                found.append(folder.as_posix())
    return found


def checkpoint_file(folder: Path) -> Path:
    """The model.safetensors of a checkpoint folder."""
    from miad.methods.base import MODEL_FILE

    return Path(folder) / MODEL_FILE


class Checkpoint:
    """One model.safetensors opened with safetensors: names, digests and float64 copies of its tensors."""

    def __init__(self, folder: Path) -> None:
        from safetensors import SafetensorError, safe_open

        self.path = checkpoint_file(folder)
        try:
            self._handle = safe_open(str(self.path), framework="pt")
        except (OSError, SafetensorError) as exc:
            raise DigestError(f"{self.path}: unreadable checkpoint ({exc})") from None
        self.names = sorted(self._handle.keys())

    def shape(self, name: str) -> list[int]:
        return list(self._handle.get_slice(name).get_shape())

    def digest(self, name: str) -> str:
        """sha256 of the safetensors dtype (F32, BF16, ...), the shape and the little-endian bytes."""
        import torch

        header = f"{self._handle.get_slice(name).get_dtype()} {self.shape(name)}\n"
        data = self._handle.get_tensor(name).contiguous().reshape(-1).view(torch.uint8).numpy()
        return _digest(header, memoryview(data))

    def values(self, name: str) -> Any:
        import torch

        return self._handle.get_tensor(name).to(torch.float64)


def model_digests(workspace: Path, *, progress: bool = False) -> list[TensorDigest]:
    """A digest row for every tensor of every checkpoint under models/ and models_size/, sorted."""
    rows = []
    folders = checkpoint_folders(workspace)
    for folder in tqdm(folders, desc="model digests", unit="model", disable=not progress, dynamic_ncols=True):
        checkpoint = Checkpoint(Path(workspace) / folder)
        rows += [TensorDigest(folder, name, checkpoint.digest(name)) for name in checkpoint.names]
    return sorted(rows)


# --- the files --------------------------------------------------------------------------------------------------


def to_tsv(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Header and rows, tab-separated, "\\n" after every line; a field holding a tab or a line break is refused."""
    lines = ["\t".join(header)]
    for row in rows:
        bad = [field for field in row if re.search(r"[\t\r\n]", field)]
        if bad:
            raise DigestError(f"cannot write {bad[0]!r} into a TSV row (it holds a tab or a line break)")
        lines.append("\t".join(row))
    return "\n".join(lines) + "\n"


def parse_tsv(text: str, header: Sequence[str], digests: Sequence[int], source: str) -> list[tuple[str, ...]]:
    """Rows of a digest file, checked: the header, the field count, the digest columns (`digests`: their
    positions), no key (every column but the digests) twice. Errors name the file, the line and the value."""
    lines = [line.rstrip("\r") for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    if not lines or tuple(lines[0].split("\t")) != tuple(header):
        got = lines[0] if lines else ""
        raise DigestError(f"{source}: line 1: expected the header {chr(9).join(header)!r}, got {got[:80]!r}")
    rows, seen = [], {}
    for number, line in enumerate(lines[1:], start=2):
        fields = tuple(line.split("\t"))
        if len(fields) != len(header):
            raise DigestError(f"{source}: line {number}: expected {len(header)} tab-separated fields, got {line!r}")
        for position in digests:
            if not DIGEST.fullmatch(fields[position]):
                raise DigestError(
                    f"{source}: line {number}: {header[position]} {fields[position]!r} is not "
                    f"{DIGEST_CHARS} lowercase hex characters"
                )
        key = tuple(f for i, f in enumerate(fields) if i not in digests)
        if key in seen:
            raise DigestError(f"{source}: line {number}: {' '.join(key)} is listed twice (first on line {seen[key]})")
        seen[key] = number
        rows.append(fields)
    return rows


def renders_tsv(rows: Iterable[ImageDigest]) -> str:
    return to_tsv(RENDERS_HEADER, ((r.dataset, r.item, r.image, r.mask) for r in sorted(rows)))


def models_tsv(rows: Iterable[TensorDigest]) -> str:
    return to_tsv(MODELS_HEADER, ((r.model, r.tensor, r.digest) for r in sorted(rows)))


def parse_renders(text: str, source: str) -> list[ImageDigest]:
    return [ImageDigest(*row) for row in parse_tsv(text, RENDERS_HEADER, (2, 3), source)]


def parse_models(text: str, source: str) -> list[TensorDigest]:
    return [TensorDigest(*row) for row in parse_tsv(text, MODELS_HEADER, (2,), source)]


def read_reference_file(folder: Path, name: str, revision: str | None) -> tuple[str, str]:
    """(text, description) of a reference file: `folder/name` in the working tree (no revision), in another
    folder (`revision` naming one), or as git `revision` holds `folder/name`."""
    if revision is not None and Path(revision).is_dir():
        folder, revision = Path(revision), None
    path = Path(folder) / name
    if revision is None:
        if not path.is_file():
            raise DigestError(
                f"{path}: no such reference file (record one with `miad reference record`, or read a committed "
                "one with --reference REV)"
            )
        return path.read_text(encoding="utf-8"), f"{path} (working tree)"
    return read_at_revision(revision, path)


# --- the machine summary ----------------------------------------------------------------------------------------


def _sidecars(workspace: Path) -> list[tuple[str, Path]]:
    """(output root, sidecar) for every provenance sidecar under the pipeline's output folders."""
    found = [
        (root, path) for root in SIDECAR_ROOTS for path in sorted((Path(workspace) / root).rglob(f"*{PROVENANCE_NAME}"))
    ]
    metrics = Path(workspace) / "results" / f"metrics.json.{PROVENANCE_NAME}"
    return found + ([("results/metrics.json", metrics)] if metrics.is_file() else [])


def _environment(run: Mapping[str, Any]) -> dict[str, Any]:
    """What in a sidecar's run decides bits: CPU model and flags, libc, libraries, knobs, pinning, image (the
    command and the core count vary between runs without changing any)."""
    keys = ("cpu", "libc", "libraries", "knobs", "pinned", "loaded_before_pin", "image")
    environment = {key: run[key] for key in keys if key in run}
    if isinstance(environment.get("cpu"), Mapping):
        environment["cpu"] = {k: v for k, v in environment["cpu"].items() if k != "cores"}
    return environment


def environments(workspace: Path) -> dict[str, Any]:
    """The distinct environments that made the workspace's outputs, most runs first: each with its runs, the
    output folders it wrote to and its one-line summary; and how many sidecars were read."""
    groups: dict[str, dict[str, Any]] = {}
    unreadable = []
    sidecars = _sidecars(workspace)
    for root, path in sidecars:
        try:
            runs = [run for run in json.loads(path.read_text(encoding="utf-8"))["runs"] if isinstance(run, dict)]
        except (OSError, ValueError, KeyError, TypeError):
            unreadable.append(path.relative_to(workspace).as_posix())  # provenance is informative only
            continue
        for run in runs:
            environment = _environment(run)
            try:
                line = environment_line(run)
            except (KeyError, TypeError, IndexError, AttributeError):
                line = "?"
            group = groups.setdefault(
                json.dumps(environment, sort_keys=True), {"runs": 0, "outputs": {}, "line": line, **environment}
            )
            group["runs"] += 1
            group["outputs"][root] = group["outputs"].get(root, 0) + 1
    ordered = sorted(groups.items(), key=lambda item: (-item[1]["runs"], item[0]))
    return {
        "environments": [group for _, group in ordered],
        "sidecars": len(sidecars),
        "unreadable_sidecars": unreadable,
    }


def locked_outputs(workspace: Path) -> dict[str, str]:
    """{output folder: DVC hash} from the workspace's dvc.lock, for the folders under renders/ and MODEL_ROOTS
    (what the digests describe); empty without a dvc.lock."""
    lock = Path(workspace) / "dvc.lock"
    if not lock.is_file():
        return {}
    try:
        stages = yaml.safe_load(lock.read_text(encoding="utf-8"))["stages"]
        outs = [out for stage in stages.values() for out in stage.get("outs", [])]
        return {out["path"]: out["md5"] for out in outs if out["path"].split("/")[0] in ("renders", *MODEL_ROOTS)}
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as error:
        raise DigestError(f"{lock}: not a readable dvc.lock ({error})") from error


def machine_summary(workspace: Path) -> dict[str, Any]:
    """machine.json: `environments`, the machine recording it (`numeric_env.describe()`) and `dvc_lock`."""
    return {**environments(workspace), "recorded_by": describe(), "dvc_lock": locked_outputs(workspace)}


def record(workspace: Path, out: Path, *, progress: bool = False) -> dict[str, int]:
    """Write renders.tsv, models.tsv and machine.json of `workspace` into `out`; all three are computed before
    any is written, so an unreadable shard or checkpoint leaves `out` as it was. Returns row counts."""
    images = render_digests(Path(workspace) / "renders", progress=progress)
    tensors = model_digests(workspace, progress=progress)
    if not images and not tensors:
        raise DigestError(
            f"{workspace}: nothing to record (no shards under renders/, no model.safetensors under "
            f"{' or '.join(MODEL_ROOTS)}/); run the pipeline or `dvc pull` first"
        )
    texts = {RENDERS_FILE: renders_tsv(images), MODELS_FILE: models_tsv(tensors)}
    summary = machine_summary(workspace)  # last: describe() reports the libraries the digests loaded
    for name, text in texts.items():
        write_text_atomic(Path(out) / name, text)
    write_json_atomic(Path(out) / MACHINE_FILE, summary)
    return {
        "images": len(images),
        "datasets": len({r.dataset for r in images}),
        "tensors": len(tensors),
        "checkpoints": len({r.model for r in tensors}),
        "environments": len(summary["environments"]),
    }
