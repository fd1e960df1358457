"""The pipeline slice with every stage in its image (MIAD_RUNTIME=docker), byte-identical to the native run.

Builds both images on a bookworm base image that .ci/docker-engine.sh makes with debootstrap (docker/local-base.sh,
for machines that reach no registry; the layer cache makes an unchanged image cost seconds), then runs `dvc repro`
of tests.pipeline_slice as a non-root user: CI runs as root, and only a non-root caller shows that files are written
as the caller and that no stage runs as root.
"""

from __future__ import annotations

import difflib
import grp
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from miad.numeric_env import PROVENANCE_NAME
from miad.runtime import build, engine, images
from tests.pipeline_slice import BIN, TARGETS, prepare_slice, slice_outputs
from tests.project_copy import REPO

pytestmark = pytest.mark.slow
BASE_TAG = "miad-base:bookworm"
CI_USER = "miad-ci"  # the non-root caller when the tests run as root


@pytest.fixture(scope="session")
def docker_engine() -> str:
    """A running Docker engine (the tests never install or start one: .ci/docker-engine.sh does)."""
    ready, why = engine.available()
    if not ready:
        pytest.skip(f"no Docker engine answers ({why}): run .ci/docker-engine.sh as root")
    return engine.client()


def blocked_folders(paths: list[Path]) -> list[Path]:
    """The folders above `paths` that other users may not traverse (as /root is, above a pyenv Python)."""
    folders = {folder for path in paths for folder in Path(path).resolve().parents}
    return sorted(f for f in folders if f.is_dir() and not os.stat(f).st_mode & stat.S_IXOTH)


@pytest.fixture(scope="session")
def caller() -> Iterator[tuple[int, int]]:
    """(uid, gid) to run the docker-mode repro as: this user, or when root a non-root user created for it, which
    is given traverse permission (an ACL, removed afterwards) on the folders above this interpreter and venv."""
    if os.getuid() != 0:
        yield os.getuid(), os.getgid()
        return
    try:
        entry = pwd.getpwnam(CI_USER)
    except KeyError:
        pytest.skip(f"run as root, the tests need the non-root user {CI_USER}: run .ci/docker-engine.sh as root")
    needed = [Path(sys.executable).resolve(), Path(sys.prefix), REPO]
    needed += [Path(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    granted = blocked_folders(needed)
    for folder in granted:
        subprocess.run(["setfacl", "-m", f"u:{entry.pw_uid}:x", str(folder)], check=True)
    try:
        yield entry.pw_uid, entry.pw_gid
    finally:
        for folder in granted:
            subprocess.run(["setfacl", "-x", f"u:{entry.pw_uid}", str(folder)], check=False)


@pytest.fixture(scope="session")
def docker_slice(docker_engine: str, caller: tuple[int, int]) -> Iterator[Path]:
    """A copy of the slice project whose docker/images.lock names images built here on a debootstrap base."""
    if subprocess.run([docker_engine, "image", "inspect", BASE_TAG], capture_output=True).returncode != 0:
        pytest.skip(f"no {BASE_TAG} image: run .ci/docker-engine.sh as root (it runs docker/local-base.sh)")
    top = Path(tempfile.mkdtemp(prefix="miad-docker-slice-"))  # not under pytest's root-only tmp folder
    try:
        repo = prepare_slice(top / "repo")
        build.build_images(repo, base=BASE_TAG, quiet=True)
        (top / "home").mkdir()
        os.chmod(top, 0o755)
        if os.getuid() == 0:
            subprocess.run(["chown", "-R", f"{caller[0]}:{caller[1]}", str(top)], check=True)
        yield repo
    finally:
        shutil.rmtree(top, ignore_errors=True)


def run_as(caller: tuple[int, int], cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run `cmd` as `caller` (with access to the Docker socket); fail the test with its output if it fails."""
    kwargs: dict = {}
    if os.getuid() == 0:
        socket_group = os.stat("/var/run/docker.sock").st_gid
        kwargs = {"user": caller[0], "group": caller[1], "extra_groups": [socket_group]}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False, **kwargs)
    assert proc.returncode == 0, f"{' '.join(cmd)} as uid {caller[0]} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def test_images_hold_only_their_own_stack_and_run_as_non_root(docker_engine: str, docker_slice: Path) -> None:
    lock = images.read_lock(docker_slice)
    probes = {"render": ("import bpy", "import torch"), "train": ("import torch, timm", "import bpy")}
    for name, (present, absent) in probes.items():
        image = str(lock[name]["id"])
        base = [docker_engine, "run", "--rm", "--network", "none", image]
        assert subprocess.run([*base, "id", "-u"], capture_output=True, text=True).stdout.strip() == "1000"
        assert subprocess.run([*base, "python", "-c", present], capture_output=True).returncode == 0, (name, present)
        assert subprocess.run([*base, "python", "-c", absent], capture_output=True).returncode != 0, (name, absent)


def test_slice_in_containers_matches_native_byte_for_byte(
    native_slice: Path, docker_slice: Path, caller: tuple[int, int]
) -> None:
    home = docker_slice.parent / "home"
    probe = subprocess.run([sys.executable, "-c", ""], capture_output=True, check=False, user=caller[0])
    assert probe.returncode == 0, f"uid {caller[0]} cannot run {sys.executable}: make the venv readable to it"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "HOME": str(home), "MIAD_RUNTIME": "docker"}
    run_as(caller, ["dvc", "repro", *TARGETS], docker_slice, env)

    ours, reference = slice_outputs(docker_slice), slice_outputs(native_slice)
    assert sorted(ours) == sorted(reference)
    differing = [name for name in reference if ours[name] != reference[name]]
    shown = "".join(
        line
        for n in differing
        if n.endswith((".json", ".lock", ".csv"))
        for line in difflib.unified_diff(reference[n].decode().splitlines(1), ours[n].decode().splitlines(1), n, n)
    )
    assert not differing, f"outputs differ from the native run: {differing}\n{shown[:6000]}"

    written = [p for d in ("renders", "models", "results") for p in (docker_slice / d).rglob("*")]
    assert written
    foreign = [str(p) for p in written if p.stat().st_uid != caller[0]]
    assert not foreign, f"not owned by the caller (uid {caller[0]}): {foreign[:5]}"
    if os.getuid() == 0:
        assert caller[0] != 0

    lock = images.read_lock(docker_slice)
    sidecars = sorted(
        p for d in ("renders", "models", "results") for p in (docker_slice / d).rglob(f"*{PROVENANCE_NAME}")
    )
    assert sidecars
    for path in sidecars:
        expected = lock["render" if path.is_relative_to(docker_slice / "renders") else "train"]["id"]
        runs = json.loads(path.read_text(encoding="utf-8"))["runs"]
        assert {run.get("image") for run in runs} == {expected}, path
    assert grp.getgrgid(caller[1])  # the caller's group exists (files were written with it)


def test_render_fanned_out_runs_each_shard_task_in_the_render_image(
    native_slice: Path, docker_slice: Path, caller: tuple[int, int]
) -> None:
    """Two local workers under MIAD_RUNTIME=docker: the coordinator stays on the host (as it must on a Slurm login
    node, to submit), each `miad render --shard` task runs in the render image. A host `bpy` that refuses to load
    proves no shard rendered on the host; the shards equal the native run's."""
    home = docker_slice.parent / "home"
    poisoned = docker_slice.parent / "host-only"
    poisoned.mkdir(exist_ok=True)
    (poisoned / "bpy.py").write_text("raise ImportError('the host bpy must not render under MIAD_RUNTIME=docker')\n")
    os.chmod(poisoned, 0o755)
    renders = docker_slice / "fanned-renders"  # inside the repository: the only folder mounted into containers
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(home),
        "MIAD_RUNTIME": "docker",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(poisoned), os.environ.get("PYTHONPATH", "")])),
    }
    scenario = "witness_mark"
    cmd = ["miad", "render", "--scenario", scenario, "--variant", "main", "--renders", renders.name]
    run_as(caller, [*cmd, "--executor", "local", "--workers", "2", "--no-progress"], docker_slice, env)

    def shards(root: Path) -> dict[str, bytes]:
        top = root / "main" / scenario
        return {p.relative_to(top).as_posix(): p.read_bytes() for p in sorted(top.rglob("*")) if p.is_file()}

    ours = {k: v for k, v in shards(renders).items() if not k.endswith(PROVENANCE_NAME)}
    reference = {k: v for k, v in shards(native_slice / "renders").items() if not k.endswith(PROVENANCE_NAME)}
    assert ours.keys() == reference.keys() and ours == reference
