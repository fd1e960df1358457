"""The two images and `docker/images.lock`, which records the image IDs that `make images` built.

The runtime runs images by ID, never by a tag that could move: what the lock names is what ran, and each
output's provenance sidecar records it.
"""

from __future__ import annotations

import json
from pathlib import Path

from miad.atomic import write_text_atomic
from miad.config import ConfigError

IMAGES = ("render", "train")
LOCK_PATH = Path("docker/images.lock")  # relative to the repository root
# Which image runs each stage command (dvc.yaml's cmds); every other command stays on the host.
STAGE_IMAGES = {
    "dataset": "render",
    "render": "render",
    "import": "render",  # MVTec-layout import: OpenCV and NumPy only
    "train": "train",
    "evaluate": "train",
    "stats": "train",
    "report": "train",
}


def dockerfile(root: Path, image: str) -> Path:
    """The Dockerfile of `image` in the checkout at `root`."""
    return root / "docker" / f"{image}.Dockerfile"


def read_lock(root: Path) -> dict[str, dict[str, object]]:
    """{image: {"id": "sha256:...", ...}} from root/docker/images.lock; a clear error when it is malformed."""
    path = root / LOCK_PATH
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not readable as JSON ({exc}); rebuild it with `make images`") from None
    images = data.get("images") if isinstance(data, dict) else None
    for name in IMAGES:
        entry = images.get(name) if isinstance(images, dict) else None
        if not isinstance(entry, dict) or not str(entry.get("id", "")).startswith("sha256:"):
            raise ConfigError(f"{path}: images.{name}.id must be an image ID (sha256:...); rebuild with `make images`")
    return images


def image_id(root: Path, image: str) -> str:
    """The ID that root/docker/images.lock records for `image`."""
    return str(read_lock(root)[image]["id"])


def write_lock(root: Path, images: dict[str, dict[str, object]]) -> Path:
    """Write root/docker/images.lock (sorted keys, one trailing newline: stable bytes for git)."""
    path = root / LOCK_PATH
    text = json.dumps({"images": {name: images[name] for name in IMAGES}}, indent=2, sort_keys=True) + "\n"
    write_text_atomic(path, text)
    return path
