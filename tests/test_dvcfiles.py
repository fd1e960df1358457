"""The `meta:` block of `.dvc` files: written as YAML, DVC's own lines kept, read back by the asset check."""

from __future__ import annotations

from pathlib import Path

from miad.assets import pinned_files
from miad.dvcfiles import dvc_command, write_meta
from tests.project_copy import REPO

DVC_LINES = (
    "outs:\n- md5: d16c51d63a326390bf4cd6d25587a869.dir\n  size: 3828240\n  nfiles: 72\n  hash: md5\n  path: data\n"
)


def test_write_meta_reproduces_data_dvc_byte_for_byte(tmp_path: Path) -> None:
    pinned = pinned_files(REPO / "data.dvc")
    copy = tmp_path / "data.dvc"
    copy.write_text(DVC_LINES, encoding="utf-8")
    write_meta(copy, {"files": pinned})
    assert pinned_files(copy) == pinned
    assert copy.read_text(encoding="utf-8").startswith(DVC_LINES + "meta:\n  files:\n")
    before = copy.read_bytes()
    write_meta(copy, {"files": pinned})  # replacing the block, not adding a second one
    assert copy.read_bytes() == before


def test_write_meta_replaces_only_the_meta_block(tmp_path: Path) -> None:
    dvc_file = tmp_path / "w.safetensors.dvc"
    dvc_file.write_text("meta:\n  old: 1\n  list:\n  - a\n" + DVC_LINES, encoding="utf-8")
    write_meta(dvc_file, {"source_sha256": "1234567890", "timm_model": "x"})
    assert dvc_file.read_text(encoding="utf-8") == DVC_LINES + "meta:\n  source_sha256: '1234567890'\n  timm_model: x\n"


def test_dvc_runs_through_this_interpreter() -> None:
    assert dvc_command("status")[1:] == ["-m", "dvc", "status"]
