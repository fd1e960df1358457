"""Run one `miad` stage command inside its image: the `docker run` argv, and the re-exec that `miad` does.

With MIAD_RUNTIME=docker, `miad dataset|render|import` re-run themselves in the render image and the other
stage commands (train, evaluate, stats, report) in the train image; dvc.yaml and params stay untouched, so
DVC sees the same commands and the same hashes either way. The container sees the repository at the same
path, runs as the calling user, has no network, inherits the pinned numeric environment, and runs the
checkout's own src/ (the code DVC hashed), with the image supplying the interpreter and libraries.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from miad import numeric_env
from miad.config import ConfigError, Params
from miad.project import project_root
from miad.runtime import engine, images

RUNTIME_ENV = "MIAD_RUNTIME"  # native (default) or docker
RUNTIMES = ("native", "docker")
IN_CONTAINER_ENV = "MIAD_IN_CONTAINER"  # set by the images: never re-execute from inside one
IMAGE_ENV = numeric_env.IMAGE_ENV  # the image ID, passed in so that provenance sidecars can record it
CACHE_ENV = "MIAD_CACHE"  # miad.backbones' derived-weights cache (not imported here: it loads torch)
DEFAULT_CACHE = Path("~/.cache/miad")
# Variables passed through when set: the numeric pins, what picks or configures the GPU, and OpenMP's wait policy
# (`miad repro --jobs N` sets it PASSIVE for stages sharing cores: without it their spinning threads made a smoke
# training stage 10x slower in a container than natively).
PASSED_ENV = (
    *numeric_env.KNOBS,
    "CUBLAS_WORKSPACE_CONFIG",
    "CUDA_VISIBLE_DEVICES",
    "PYTHONHASHSEED",
    "OMP_WAIT_POLICY",
)


def runtime() -> str:
    """The runtime asked for by $MIAD_RUNTIME (default native); a clear error for any other value."""
    value = os.environ.get(RUNTIME_ENV, "") or "native"
    if value not in RUNTIMES:
        raise ConfigError(f"{RUNTIME_ENV}={value!r}: expected one of {', '.join(RUNTIMES)}")
    return value


def wants_gpu(image: str, params: Params) -> bool:
    """Whether the active profile asks for a GPU in `image`: render.device gpu, or train.device cuda."""
    active = params.active
    return active.render.device == "gpu" if image == "render" else active.train.device == "cuda"


def container_command(
    argv: Sequence[str],
    image: str,
    *,
    workdir: Path,
    root: Path | None = None,
    gpu: bool = False,
    environ: Mapping[str, str] | None = None,
    user: tuple[int, int] | None = None,
) -> list[str]:
    """The `docker run` argv that runs `miad *argv` in `image` (an ID or tag) from `workdir`.

    `root` (default `workdir`) is mounted at its own path and its src/ put first on PYTHONPATH; `user` (default
    the caller's uid:gid) owns what the command writes; `gpu` adds `--gpus all`.
    """
    environ = os.environ if environ is None else environ
    workdir, root = Path(workdir).resolve(), Path(root or workdir).resolve()
    uid, gid = user or (os.getuid(), os.getgid())
    cache = Path(environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser().resolve()
    cmd = [engine.client(), "run", "--rm", "--network", "none", "--user", f"{uid}:{gid}"]
    cmd += ["--volume", f"{root}:{root}", "--workdir", str(workdir)]
    if not cache.is_relative_to(root):
        cmd += ["--volume", f"{cache}:{cache}"]
    if gpu:
        cmd += ["--gpus", "all"]
    env = {name: environ[name] for name in PASSED_ENV if name in environ}
    env |= {"HOME": "/tmp", CACHE_ENV: str(cache), "PYTHONPATH": str(root / "src"), IMAGE_ENV: image}
    for name, value in sorted(env.items()):
        cmd += ["--env", f"{name}={value}"]
    return [*cmd, image, "miad", *argv]


def run_in_container(command: str, argv: Sequence[str], params: Callable[[], Params]) -> int | None:
    """Run `miad *argv` in its image when MIAD_RUNTIME=docker and this process is on the host; return its exit
    status, or None when the command runs here (native runtime, inside a container, or not a stage command)."""
    image = images.STAGE_IMAGES.get(command)
    if image is None or os.environ.get(IN_CONTAINER_ENV) == "1" or runtime() != "docker":
        return None
    workdir = Path.cwd()
    try:
        root = project_root(workdir, (images.LOCK_PATH,))  # the repository to mount
    except FileNotFoundError:
        raise ConfigError(
            f"MIAD_RUNTIME=docker, but no {images.LOCK_PATH} in {workdir.resolve()} or above it: "
            "build the images with `make images`"
        ) from None
    image_id = images.image_id(root, image)
    cache = Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()
    cache.mkdir(parents=True, exist_ok=True)  # else docker would create the mount point as root
    gpu = wants_gpu(image, params())
    cmd = container_command(argv, image_id, workdir=workdir, root=root, gpu=gpu)
    sys.stdout.flush()
    sys.stderr.flush()
    return subprocess.run(cmd, check=False).returncode
