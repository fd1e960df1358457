"""Build the render and train images and record their IDs in docker/images.lock (`make images`).

    miad images [--base IMAGE] [--root .] [--no-mirror] [--no-lock]

BuildKit with `--network host`: apt reaches Debian; pip uses this machine's pip configuration (its index-url,
extra-index-url and CA bundle, miad.runtime.mirror), its local `file://` indexes served on 127.0.0.1. The index URL
and the CA bundle go in as build secrets, so they never change a layer's cache key: an unchanged image rebuilds in
seconds.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from miad.runtime import engine, images, mirror

TAG_PREFIX = "miad"


@dataclass(frozen=True)
class Built:
    """One image built: its ID, tag, size and how long the build took."""

    name: str
    id: str
    tag: str
    size_bytes: int
    seconds: float


def build_command(
    root: Path, name: str, tag: str, iidfile: Path, secrets: dict[str, Path], base: str | None
) -> list[str]:
    """The `docker build` argv for image `name` of the checkout at `root`."""
    argv = [engine.client(), "build", "--network", "host", "--file", str(images.dockerfile(root, name))]
    argv += ["--tag", tag, "--iidfile", str(iidfile)]
    for key, path in sorted(secrets.items()):
        argv += ["--secret", f"id={key},src={path}"]
    if base:
        argv += ["--build-arg", f"BASE={base}"]
    return [*argv, str(root)]


def build_one(root: Path, name: str, secrets: dict[str, Path], base: str | None, quiet: bool) -> Built:
    """Build image `name`; raise RuntimeError with docker's output when the build fails."""
    tag = f"{TAG_PREFIX}-{name}:local"
    with tempfile.TemporaryDirectory(prefix="miad-build-") as tmp:
        iidfile = Path(tmp) / "iid"
        env = {**os.environ, "DOCKER_BUILDKIT": "1", "BUILDKIT_PROGRESS": "plain"}
        start = time.perf_counter()
        proc = subprocess.run(
            build_command(root, name, tag, iidfile, secrets, base),
            env=env,
            capture_output=quiet,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            output = f"\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}" if quiet else ""
            raise RuntimeError(f"docker build of the {name} image failed (exit {proc.returncode}){output}")
        image_id = iidfile.read_text(encoding="utf-8").strip()
    size = subprocess.run(
        [engine.client(), "image", "inspect", "--format", "{{.Size}}", image_id],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return Built(name, image_id, tag, int(size), seconds)


def build_images(
    root: Path, *, base: str | None = None, use_mirror: bool = True, write_lock: bool = True, quiet: bool = False
) -> dict[str, Built]:
    """Build both images from the checkout at `root`; write root/docker/images.lock when `write_lock`."""
    built: dict[str, Built] = {}
    settings = mirror.pip_settings()
    if not use_mirror:  # pip's remote index only
        settings = mirror.PipSettings(settings.index_url, cert=settings.cert)
    with (
        mirror.serve(settings) as url,
        tempfile.TemporaryDirectory(prefix="miad-secrets-") as tmp,
    ):
        secrets: dict[str, Path] = {}
        if settings.cert:
            secrets["ca"] = settings.cert
        if url:
            secrets["index_url"] = Path(tmp) / "index_url"
            secrets["index_url"].write_text(url, encoding="utf-8")
        for name in images.IMAGES:
            built[name] = build_one(root, name, secrets, base, quiet)
    if write_lock:
        record = {b.name: {"id": b.id, "tag": b.tag, "base": base or "the Dockerfile's BASE"} for b in built.values()}
        images.write_lock(root, record)
    return built
