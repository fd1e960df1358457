"""Remote setup without a server: which remote, `verify = true`, no committed credentials, clear refusals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from miad.cli import main
from miad.remote.settings import RemoteError, add_remote, check_no_committed_secrets, resolve_remote


@pytest.fixture
def dvc_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q", "--no-scm"], cwd=tmp_path, check=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_no_remote_means_nothing_to_pull(dvc_repo: Path, capsys):
    assert resolve_remote(dvc_repo) is None
    assert main(["pull"]) == 0
    assert "no DVC remote configured: nothing to pull" in capsys.readouterr().err
    assert main(["publish"]) == 2
    assert "no DVC remote configured: add one first" in capsys.readouterr().err


def test_added_remote_verifies_and_keeps_its_endpoint(dvc_repo: Path, capsys):
    assert main(["remote", "add", "storage", "s3://bucket/miad", "--endpoint", "http://127.0.0.1:9000"]) == 0
    assert "verify = true" in capsys.readouterr().err
    remote = resolve_remote(dvc_repo)
    assert remote is not None and (remote.name, remote.url) == ("storage", "s3://bucket/miad")
    assert remote.verify and remote.endpoint == "http://127.0.0.1:9000"
    assert remote.describe() == "DVC remote 'storage' (s3://bucket/miad, endpoint http://127.0.0.1:9000)"
    config = (dvc_repo / ".dvc" / "config").read_text()
    assert "verify = true" in config and "remote = storage" in config


@pytest.mark.parametrize(
    ("url", "endpoint", "message"),
    [
        ("/mnt/shared/miad", "http://127.0.0.1:9000", "an endpoint applies to s3:// remotes only"),
        ("s3://bucket/miad", "127.0.0.1:9000", "--endpoint 127.0.0.1:9000: expected an http:// or https:// URL"),
    ],
)
def test_bad_endpoint_is_refused(dvc_repo: Path, url: str, endpoint: str, message: str):
    with pytest.raises(RemoteError, match=message):
        add_remote(dvc_repo, "storage", url, endpoint=endpoint, default=True, force=False)
    assert resolve_remote(dvc_repo) is None


def test_committed_credentials_stop_every_remote_command(dvc_repo: Path, capsys):
    add_remote(dvc_repo, "storage", "s3://bucket/miad", endpoint=None, default=True, force=False)
    dvc = [sys.executable, "-m", "dvc", "remote", "modify"]
    subprocess.run([*dvc, "--local", "storage", "secret_access_key", "fine-here"], cwd=dvc_repo, check=True)
    check_no_committed_secrets(dvc_repo)  # .dvc/config.local is not committed
    subprocess.run([*dvc, "storage", "secret_access_key", "leaked"], cwd=dvc_repo, check=True)
    for command in (["pull"], ["publish"], ["repro"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert f"{dvc_repo / '.dvc' / 'config'} holds credentials (remote.storage.secret_access_key)" in err


def test_remote_choice_is_explicit(dvc_repo: Path):
    for name in ("one", "two"):
        add_remote(dvc_repo, name, f"/tmp/{name}", endpoint=None, default=False, force=False)
    with pytest.raises(RemoteError, match=r"2 DVC remotes \(one, two\) and no default"):
        resolve_remote(dvc_repo)
    assert resolve_remote(dvc_repo, "two").url == "/tmp/two"
    with pytest.raises(RemoteError, match="DVC remote 'three' is not configured \\(configured: one, two\\)"):
        resolve_remote(dvc_repo, "three")


def test_new_commands_explain_themselves(capsys):
    for name in ("remote", "pull", "publish", "repro", "weights"):
        with pytest.raises(SystemExit) as info:
            main([name, "--help"])
        assert info.value.code == 0 and f"usage: miad {name}" in capsys.readouterr().out
