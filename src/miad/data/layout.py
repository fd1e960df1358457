"""Where things live on disk; the only module that spells these paths."""

from __future__ import annotations

from pathlib import Path

GOOD = "good"  # defect_type of a defect-free image (and its MVTec-layout folder name)
SPLITS = ("train", "test")  # every dataset's splits, in this order
MANIFEST_NAME = "manifest.json"


def dataset_key(variant: str, scenario: str) -> str:
    """The key naming one rendered dataset in models/ and results/: `<variant>/<scenario>`."""
    return f"{variant}/{scenario}"


def split_dir(renders: Path, variant: str, scenario: str, split: str) -> Path:
    return Path(renders) / variant / scenario / split


def shard_name(shard_index: int) -> str:
    return f"shard-{shard_index:05d}.zip"


def manifest_path(split_directory: Path) -> Path:
    return Path(split_directory) / MANIFEST_NAME
