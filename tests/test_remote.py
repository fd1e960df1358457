"""Pull instead of recompute, against a real S3 server (SeaweedFS on 127.0.0.1).

Workspace A computes the smallest pipeline slice and publishes it; fresh clones with empty caches then pull:
everything (nothing recomputed), all but one model (only its stage reruns), a corrupt object (named, never used,
whatever DVC's `verify` says), wrong credentials or a dead endpoint (named, workspace untouched). A downstream
project imports one scenario's renders with `dvc import` / `dvc get`. One server and one published workspace
serve every test of the module.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from miad.numeric_env import PROVENANCE_NAME
from miad.weights.catalog import PAPER_WEIGHTS
from tests.conftest import tiny_params_dict
from tests.http_files import serve_folder
from tests.project_copy import REPO, copy_project
from tests.s3_server import S3Server, free_ports, seaweedfs

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
REMOTE = "miad-s3"
PREFIX = "miad"  # key prefix of the DVC remote inside the bucket
SCENARIO = "electrical_insulator"
MODEL_STAGE = f"train@patchcore-{SCENARIO}"
MODEL_DIR = f"models/patchcore/main/{SCENARIO}"
DATASET = f"renders/main/{SCENARIO}"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "miad test",
    "GIT_AUTHOR_EMAIL": "test@miad.invalid",
    "GIT_COMMITTER_NAME": "miad test",
    "GIT_COMMITTER_EMAIL": "test@miad.invalid",
}


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, ok: bool = True) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **GIT_ENV, **(env or {})}
    proc = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, check=False)
    if ok:
        assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def slice_params() -> dict:
    """The smallest slice with every kind of stage: one scenario, PatchCore, one Table 7 fraction, stats, report."""
    params = tiny_params_dict()
    params["smoke"]["train"]["patchcore"]["image_size"] = 64
    params.update(scenarios=[SCENARIO], methods=["patchcore"], unified_methods=[])
    params["table7"] = {"methods": ["patchcore"], "scenarios": [SCENARIO], "fractions": [0.5], "uncapped_fractions": []}
    params["ablation"] = {"methods": [], "scenarios": [], "variants": []}
    return params


def stages_run(output: str) -> set[str]:
    """The stages `dvc repro` ("Running stage 'X'") or `miad repro` ("  start X") ran."""
    found = re.findall(r"Running stage '([^']+)'|^\s+start (\S+)$", output, re.MULTILINE)
    return {plain or launched for plain, launched in found}


def outputs(repo: Path) -> dict[str, bytes]:
    """Every pipeline output and data file (bytes), without the provenance sidecars (outside DVC's hashes)."""
    paths = [p for top in ("data", "renders", "models", "models_size", "results") for p in (repo / top).rglob("*")]
    return {
        p.relative_to(repo).as_posix(): p.read_bytes()
        for p in sorted(paths)
        if p.is_file() and not p.name.endswith(PROVENANCE_NAME) and p.name != ".gitignore"
    }


def workspace(repo: Path) -> dict[str, bytes]:
    """Every file of a workspace except DVC's cache and scratch space: what a failed pull must leave alone."""
    skip = (".git/", ".dvc/cache/", ".dvc/tmp/")
    return {
        p.relative_to(repo).as_posix(): p.read_bytes()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and not p.relative_to(repo).as_posix().startswith(skip)
    }


def object_md5(path: Path) -> str:
    """The md5 a cache object is stored under (its content must hash to it)."""
    return path.parent.name + path.name.removesuffix(".dir")


def object_key(md5: str) -> str:
    return f"{PREFIX}/files/md5/{md5[:2]}/{md5[2:]}"


def cache_listing(repo: Path, dir_md5: str) -> dict[str, str]:
    """{relative path: md5} of a directory output, from its `.dir` object in the cache."""
    entries = json.loads((repo / ".dvc/cache/files/md5" / dir_md5[:2] / dir_md5[2:]).read_text())
    return {entry["relpath"]: entry["md5"] for entry in entries}


def locked_out(repo: Path, stage: str, path: str) -> str:
    """md5 of `path` in dvc.lock's entry for `stage` (`NAME@KEY` of a foreach/matrix stage)."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return next(out["md5"] for out in lock["stages"][stage]["outs"] if out["path"] == path)


def clone(upstream: Path, target: Path) -> Path:
    """A fresh clone: the committed files only, an empty DVC cache, no .dvc/config.local (no credentials)."""
    run(["git", "clone", "-q", str(upstream), str(target)], upstream.parent)
    return target


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture(scope="module")
def upstream(s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Workspace A: remote added the bundle's way (credentials in .dvc/config.local), slice reproduced through the
    empty remote (nothing to pull is not an error), published, committed."""
    repo = copy_project(tmp_path_factory.mktemp("upstream") / "a")
    (repo / "params.yaml").write_text(yaml.safe_dump(slice_params(), sort_keys=False), encoding="utf-8")
    run(["git", "init", "-q"], repo)
    run(["miad", "remote", "add", REMOTE, f"s3://{s3.bucket}/{PREFIX}", "--endpoint", s3.endpoint], repo)
    env = s3.env()
    for option in ("access_key_id", "secret_access_key"):
        value = env["AWS_ACCESS_KEY_ID" if option == "access_key_id" else "AWS_SECRET_ACCESS_KEY"]
        run(["dvc", "remote", "modify", "--local", REMOTE, option, value], repo)
    no_aws = {key: value for key, value in env.items() if not key.startswith("AWS_") or key.endswith("_FILE")}
    computed = run(["miad", "repro"], repo, no_aws)
    assert MODEL_STAGE in stages_run(computed.stdout + computed.stderr)
    run(["miad", "publish"], repo, no_aws)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "slice"], repo)
    return repo


def test_remote_setup_is_committed_without_credentials(upstream: Path, s3: S3Server):
    config = (upstream / ".dvc" / "config").read_text()
    assert "verify = true" in config and s3.endpoint in config
    assert "secret" not in config and "access_key" not in config
    assert "secret_access_key" in (upstream / ".dvc" / "config.local").read_text()
    tracked = run(["git", "ls-files"], upstream).stdout.split()
    assert ".dvc/config" in tracked and ".dvc/config.local" not in tracked


def test_fresh_clone_pulls_everything_and_computes_nothing(upstream: Path, s3: S3Server, tmp_path: Path):
    repo = clone(upstream, tmp_path / "b")
    proc = run(["miad", "repro"], repo, s3.env())
    log = proc.stdout + proc.stderr
    assert stages_run(log) == set(), log
    assert f"pulled from DVC remote {REMOTE!r}" in log and "0 output(s) it lacks" in log
    assert "up to date" in run(["dvc", "status"], repo).stdout
    pulled, original = outputs(repo), outputs(upstream)
    assert pulled.keys() == original.keys() and len(pulled) > 20
    assert [name for name in pulled if pulled[name] != original[name]] == []
    assert json.loads((repo / "results/metrics.json").read_text()) == json.loads(
        (upstream / "results/metrics.json").read_text()
    )


def test_model_missing_on_remote_recomputes_only_its_stage(upstream: Path, s3: S3Server, tmp_path: Path):
    dir_md5 = locked_out(upstream, MODEL_STAGE, MODEL_DIR)
    gone = [object_key(dir_md5), object_key(cache_listing(upstream, dir_md5)["model.safetensors"])]
    client = s3.client()
    for key in gone:
        client.delete_object(Bucket=s3.bucket, Key=key)
    try:
        repo = clone(upstream, tmp_path / "c")
        proc = run(["miad", "repro"], repo, s3.env())
        log = proc.stdout + proc.stderr
        ran = stages_run(log)
        assert MODEL_STAGE in ran, log
        # Training is deterministic: the model comes out byte-identical, so its dependents may stay as pulled.
        assert ran <= {MODEL_STAGE, f"evaluate@patchcore-{SCENARIO}", "report"}, log
        assert "up to date" in run(["dvc", "status"], repo).stdout
        assert outputs(repo) == outputs(upstream)
    finally:
        run(["miad", "publish"], upstream)  # `make publish` re-uploads what the remote lacks
    assert set(gone) <= set(s3.keys(PREFIX))


@pytest.mark.parametrize("verify", [True, False], ids=["bundle-verify", "dvc-default-no-verify"])
def test_corrupt_object_on_remote_is_named_and_never_used(upstream: Path, s3: S3Server, tmp_path: Path, verify):
    dir_md5 = locked_out(upstream, f"render@{SCENARIO}", DATASET)
    shard, md5 = next((path, md5) for path, md5 in cache_listing(upstream, dir_md5).items() if path.endswith(".zip"))
    good = (upstream / DATASET / shard).read_bytes()
    client = s3.client()
    client.put_object(Bucket=s3.bucket, Key=object_key(md5), Body=good[:-100] + b"x" * 100)
    try:
        repo = clone(upstream, tmp_path / "d")
        if not verify:
            run(["dvc", "remote", "modify", "--local", REMOTE, "verify", "false"], repo)
        before = workspace(repo)
        proc = run(["miad", "repro"], repo, s3.env(), ok=False)
        assert proc.returncode != 0
        assert f"DVC remote {REMOTE!r}" in proc.stderr and f"{DATASET}/{shard}" in proc.stderr, proc.stderr
        assert "nothing was checked out" in proc.stderr
        assert stages_run(proc.stdout + proc.stderr) == set()
        assert workspace(repo) == before
        cached = [p for p in (repo / ".dvc/cache/files/md5").rglob("*") if p.is_file()]
        assert len(cached) > 10  # the intact objects arrived; the corrupt one is not among them:
        assert all(
            hashlib.md5(p.read_bytes()).hexdigest() == p.parent.name + p.name.removesuffix(".dir") for p in cached
        )
    finally:
        client.put_object(Bucket=s3.bucket, Key=object_key(md5), Body=good)


@pytest.mark.parametrize("failure", ["wrong-credentials", "unreachable-endpoint"])
def test_remote_errors_name_the_remote_and_leave_the_workspace(upstream: Path, s3: S3Server, tmp_path: Path, failure):
    repo = clone(upstream, tmp_path / "e")
    env = s3.env()
    if failure == "wrong-credentials":
        env = s3.env(secret_key="not-the-secret")
    else:
        dead = f"http://127.0.0.1:{free_ports(1)[0]}"
        run(["dvc", "remote", "modify", "--local", REMOTE, "endpointurl", dead], repo)
    before = workspace(repo)
    proc = run(["miad", "repro"], repo, env, ok=False)
    assert proc.returncode != 0
    assert f"DVC remote {REMOTE!r} (s3://{s3.bucket}/{PREFIX}" in proc.stderr, proc.stderr
    assert "nothing in the workspace was changed" in proc.stderr
    assert ("403" if failure == "wrong-credentials" else "cannot connect to its endpoint") in proc.stderr
    assert stages_run(proc.stdout + proc.stderr) == set()
    assert workspace(repo) == before


def test_downstream_project_imports_one_scenario(upstream: Path, s3: S3Server, tmp_path: Path):
    source = clone(upstream, tmp_path / "published")  # a clone URL whose own DVC cache is empty: data come from S3
    downstream = tmp_path / "downstream"
    downstream.mkdir()
    run(["git", "init", "-q"], downstream)
    run(["dvc", "init", "-q"], downstream)
    run(["dvc", "import", str(source), DATASET, "-o", "insulator"], downstream, s3.env())
    run(["dvc", "get", str(source), DATASET, "-o", str(tmp_path / "got")], downstream, s3.env())
    original = {p.relative_to(upstream / DATASET): p.read_bytes() for p in (upstream / DATASET).rglob("*.*")}
    original = {path: data for path, data in original.items() if not path.name.endswith(PROVENANCE_NAME)}
    for folder in (downstream / "insulator", tmp_path / "got"):
        copied = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*.*")}
        assert copied == original
        run(["miad", "verify", str(folder / "train"), str(folder / "test")], downstream)
    imported = yaml.safe_load((downstream / "insulator.dvc").read_text())
    assert imported["deps"][0]["repo"]["url"] == str(source) and imported["deps"][0]["path"] == DATASET
    assert "up to date" in run(["dvc", "status"], downstream).stdout


def test_paper_weights_fetched_once_then_pulled_offline(s3: S3Server, tmp_path: Path):
    """Randomly initialised checkpoints of both paper backbones, served over HTTP as the public URLs would be, are
    fetched with their checksum, converted, tracked and published; a fresh clone pulls them with the server gone."""
    import timm
    import torch
    from safetensors.torch import load_file

    from miad.backbones import create_feature_extractor

    served = tmp_path / "www"
    served.mkdir()
    states = {}
    for name in PAPER_WEIGHTS:
        states[name] = timm.create_model(name, pretrained=False).state_dict()
        if name == "wide_resnet50_2":  # like torchvision checkpoints older than torch 0.4.1: no BatchNorm counters
            states[name] = {k: v for k, v in states[name].items() if not k.endswith("num_batches_tracked")}
        torch.save(states[name], served / f"{name}.pth")
    repo = tmp_path / "w"
    repo.mkdir()
    (repo / ".gitignore").write_text((REPO / ".gitignore").read_text())
    run(["git", "init", "-q"], repo)
    run(["dvc", "init", "-q"], repo)
    run(["miad", "remote", "add", REMOTE, f"s3://{s3.bucket}/weights-test", "--endpoint", s3.endpoint], repo)
    with serve_folder(served) as base:
        for name in PAPER_WEIGHTS:
            digest = hashlib.sha256((served / f"{name}.pth").read_bytes()).hexdigest()
            run(["miad", "weights", "fetch", name, "--url", f"{base}/{name}.pth", "--sha256", digest[:8]], repo)
            meta = yaml.safe_load((repo / "weights" / f"{name}.safetensors.dvc").read_text())["meta"]
            assert meta == {"source_url": f"{base}/{name}.pth", "source_sha256": digest, "timm_model": name}
    run(["miad", "publish"], repo, s3.env())
    ignored = run(["git", "check-ignore", "weights/wide_resnet50_2.safetensors"], repo).stdout
    assert ignored.strip() == "weights/wide_resnet50_2.safetensors"
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "weights"], repo)
    assert run(["git", "ls-files", "weights"], repo).stdout.split() == [
        "weights/efficientnet_b4.safetensors.dvc",  # the root .gitignore keeps the safetensors out, lets these in
        "weights/wide_resnet50_2.safetensors.dvc",
    ]

    node = clone(repo, tmp_path / "node")  # a cluster node: no internet (the HTTP server is gone), the remote only
    assert "pulled 2 new object(s)" in run(["miad", "pull"], node, s3.env()).stderr
    for name, state in states.items():
        path = node / "weights" / f"{name}.safetensors"
        assert path.read_bytes() == (repo / "weights" / f"{name}.safetensors").read_bytes()
        pulled = load_file(str(path))
        assert all(torch.equal(pulled[key], value) for key, value in state.items())
        extractor = create_feature_extractor(name, str(path), (1, 2))
        assert len(extractor(torch.zeros(1, 3, 64, 64))) == 2
