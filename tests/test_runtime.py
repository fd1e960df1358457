"""miad.runtime without a Docker engine: the `docker run` argv, the runtime switch, the images lock, the mirror."""

from __future__ import annotations

import hashlib
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from miad.cli import build_parser
from miad.config import ConfigError
from miad.project import project_root
from miad.runtime import container_command, images, mirror, run_in_container
from miad.runtime.docker import runtime
from tests.project_copy import REPO

IMAGE = "sha256:" + "ab" * 32


def test_container_command_mounts_the_repository_as_the_caller_without_network(tmp_path: Path) -> None:
    work = tmp_path / "repo"
    (work / "sub").mkdir(parents=True)
    environ = {
        "OMP_NUM_THREADS": "2",
        "MIAD_THREADS": "2",
        "MIAD_TIMINGS": "/x.jsonl",
        "MIAD_CACHE": str(tmp_path / "c"),
        "OMP_WAIT_POLICY": "PASSIVE",  # miad repro --jobs N: stages sharing cores must not spin in containers either
    }
    cmd = container_command(
        ["train", "--method", "ae"], IMAGE, workdir=work / "sub", root=work, environ=environ, user=(1234, 99)
    )
    assert cmd[1:5] == ["run", "--rm", "--network", "none"]
    assert cmd[cmd.index("--user") + 1] == "1234:99"
    assert f"{work.resolve()}:{work.resolve()}" in cmd
    assert f"{tmp_path / 'c'}:{tmp_path / 'c'}" in cmd  # a cache outside the repository is mounted too
    assert cmd[cmd.index("--workdir") + 1] == str((work / "sub").resolve())
    env = [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--env"]
    expected = {"OMP_NUM_THREADS=2", "MIAD_THREADS=2", f"MIAD_IMAGE={IMAGE}", f"PYTHONPATH={work.resolve()}/src"}
    expected.add("OMP_WAIT_POLICY=PASSIVE")
    assert expected <= set(env)
    assert not any(e.startswith("MIAD_TIMINGS=") for e in env)  # the host logs the stage's time, not the container
    assert "--gpus" not in cmd
    assert cmd[-5:] == [IMAGE, "miad", "train", "--method", "ae"]
    assert "--gpus" in container_command(["render"], IMAGE, workdir=work, gpu=True, environ=environ)


def test_runtime_switch_rejects_unknown_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIAD_RUNTIME", "podman")
    with pytest.raises(ConfigError, match="MIAD_RUNTIME='podman'"):
        runtime()
    monkeypatch.setenv("MIAD_RUNTIME", "")
    assert runtime() == "native"


def test_native_runtime_and_non_stage_commands_run_here(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_params():
        raise AssertionError("params are read only when a stage goes to a container")

    monkeypatch.delenv("MIAD_RUNTIME", raising=False)
    assert run_in_container("train", ["train"], no_params) is None
    monkeypatch.setenv("MIAD_RUNTIME", "docker")
    assert run_in_container("compare", ["compare"], no_params) is None
    monkeypatch.setenv("MIAD_IN_CONTAINER", "1")
    assert run_in_container("train", ["train"], no_params) is None


def test_docker_runtime_without_a_lock_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MIAD_RUNTIME", "docker")
    monkeypatch.delenv("MIAD_IN_CONTAINER", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="make images"):
        run_in_container("render", ["render"], lambda: None)


def test_images_lock_roundtrip_and_errors(tmp_path: Path) -> None:
    (tmp_path / "docker").mkdir()
    record = {name: {"id": IMAGE, "tag": f"miad-{name}:local"} for name in images.IMAGES}
    path = images.write_lock(tmp_path, record)
    assert path.read_text(encoding="utf-8").endswith("}\n")
    assert images.image_id(tmp_path, "train") == IMAGE
    assert project_root(tmp_path / "docker", (images.LOCK_PATH,)) == tmp_path.resolve()
    path.write_text(json.dumps({"images": {"render": {"id": IMAGE}, "train": {"id": "latest"}}}), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"images\.train\.id"):
        images.read_lock(tmp_path)
    path.write_text("{", encoding="utf-8")
    with pytest.raises(ConfigError, match="not readable as JSON"):
        images.read_lock(tmp_path)


def test_every_stage_command_of_dvc_yaml_has_an_image() -> None:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    commands = set()
    for stage in stages.values():
        cmd = stage.get("cmd") or stage["do"]["cmd"]
        commands |= set(re.findall(r"\bmiad (\w+)", cmd if isinstance(cmd, str) else " ".join(cmd)))
    assert commands and commands <= set(images.STAGE_IMAGES)
    assert set(images.STAGE_IMAGES) <= set(build_parser()._subparsers._group_actions[0].choices)


def _index(root: Path, files: dict[str, bytes]) -> Path:
    """A local PEP 503 index: root/files/ and root/simple/<project>/index.html with sha256 fragments; returns the
    simple/ folder (what a `file://` index-url names)."""
    (root / "files").mkdir(parents=True)
    pages: dict[str, list[str]] = {}
    for name, data in files.items():
        (root / "files" / name).write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        pages.setdefault(name.split("-")[0], []).append(f'<a href="../../files/{name}#sha256={digest}">{name}</a>')
    for project, anchors in pages.items():
        (root / "simple" / project).mkdir(parents=True)
        (root / "simple" / project / "index.html").write_text("\n".join(anchors), encoding="utf-8")
    return root / "simple"


def test_pip_config_is_read_with_pips_precedence() -> None:
    listing = (
        "global.extra-index-url='file:///srv/a/simple file:///srv/b/simple'\n"
        "global.index-url='https://global.example/simple'\n"
        "install.index-url='https://install.example/simple'\n"
        ":env:.cert='/nonexistent/ca.pem'\n"
        "not a setting\n"
    )
    config = mirror.parse_pip_config(listing)
    assert config["index-url"] == "https://install.example/simple"  # install over global
    settings = mirror.pip_settings(config=config)
    assert settings.local_indexes == [Path("/srv/a/simple"), Path("/srv/b/simple")]
    assert settings.remote_indexes == ["https://install.example/simple"]
    assert settings.cert is None  # a CA bundle that does not exist is not passed on
    assert mirror.pip_settings(config={}).indexes == [mirror.default_index()]  # pip's own default, not ours


def test_local_indexes_are_served_first_then_remote_files(tmp_path: Path) -> None:
    first = _index(tmp_path / "a", {"x-1.0-py3-none-any.whl": b"first"})
    second = _index(tmp_path / "b", {"x-1.0-py3-none-any.whl": b"second", "x-0.9-py3-none-any.whl": b"old"})
    remote_root = _index(tmp_path / "up", {"x-1.0-py3-none-any.whl": b"up", "x-2.0-py3-none-any.whl": b"new"})
    with mirror.serve(mirror.PipSettings(f"file://{remote_root}")) as remote:
        assert remote is not None
        settings = mirror.PipSettings(remote, extra_index_urls=(f"file://{first}", f"file://{second}"))
        with mirror.serve(settings) as url:
            assert url is not None and url != remote
            page = urllib.request.urlopen(f"{url}/X/", timeout=10).read().decode()  # PEP 503 normalises the name
            links = dict((m.group(2), m.group(1)) for m in mirror.ANCHOR.finditer(page))
            assert set(links) == {"x-1.0-py3-none-any.whl", "x-0.9-py3-none-any.whl", "x-2.0-py3-none-any.whl"}
            assert links["x-2.0-py3-none-any.whl"].startswith(remote.removesuffix("/simple"))  # only remote has it
            first_url = urllib.parse.urljoin(url, links["x-1.0-py3-none-any.whl"])
            assert urllib.request.urlopen(first_url, timeout=10).read() == b"first"  # the first index wins a name
            assert first_url.endswith("#sha256=" + hashlib.sha256(b"first").hexdigest())
            with pytest.raises(urllib.error.HTTPError):  # only files a page named are served
                urllib.request.urlopen(f"{url}/files/0/x/../../../etc/passwd", timeout=10)
    with mirror.serve(mirror.PipSettings(None, (f"file://{tmp_path / 'missing'}",))) as url:
        assert url is None  # no local index: pip's default
    with mirror.serve(mirror.PipSettings("https://index.example/simple")) as url:
        assert url == "https://index.example/simple"  # a configured remote index goes to the build as it is
