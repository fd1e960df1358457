"""`miad weights`: checksum before anything is kept, conversion checked against the timm architecture."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from miad.cli import main
from miad.weights.catalog import PAPER_WEIGHTS
from miad.weights.convert import convert, to_timm_state_dict
from miad.weights.fetch import WeightsError, download
from miad.weights.install import fetch_weights
from tests.http_files import serve_folder
from tests.s3_server import free_ports


def test_pinned_sources_are_the_ones_timm_records():
    import timm

    tags = {"wide_resnet50_2": "wide_resnet50_2.tv_in1k", "efficientnet_b4": "efficientnet_b4.ra2_in1k"}
    assert set(PAPER_WEIGHTS) == set(tags)
    for name, source in PAPER_WEIGHTS.items():
        assert timm.models.get_pretrained_cfg(tags[name]).url.endswith(source.url.split("/")[-1])
        assert source.url.endswith(f"-{source.sha256}.pth")  # torch.hub's convention: sha256 prefix in the name
        assert source.timm_name == name


def test_wrong_checksum_keeps_nothing(tmp_path: Path):
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "w.pth").write_bytes(b"not the published file")
    with serve_folder(tmp_path / "www") as base, pytest.raises(WeightsError) as info:
        download(f"{base}/w.pth", tmp_path / "out", "95faca4d")
    digest = hashlib.sha256(b"not the published file").hexdigest()
    assert f"{base}/w.pth: sha256 {digest} does not match the pinned 95faca4d" in str(info.value)
    assert list((tmp_path / "out").iterdir()) == []


def test_unreachable_url_is_named(tmp_path: Path):
    url = f"http://127.0.0.1:{free_ports(1)[0]}/wide_resnet50_2-95faca4d.pth"
    with pytest.raises(WeightsError, match=f"{url}: cannot download .*dvc pull"):
        download(url, tmp_path, "95faca4d")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", ["95fac", "xyz12345", "0" * 65])
def test_bad_checksum_spec_is_refused(tmp_path: Path, bad: str):
    with pytest.raises(WeightsError, match=f"sha256 {bad!r}: expected 8 to 64 hex digits"):
        download("http://127.0.0.1:1/w.pth", tmp_path, bad)


def test_mirror_url_needs_its_own_checksum(tmp_path: Path, capsys):
    with pytest.raises(WeightsError, match="needs its own --sha256"):
        fetch_weights("wide_resnet50_2", tmp_path / "w.safetensors", url="http://mirror.invalid/w.pth")
    assert main(["weights", "fetch", "resnet18"]) == 2
    assert "unknown backbone 'resnet18'" in capsys.readouterr().err


def test_checkpoint_of_another_architecture_is_refused(tmp_path: Path):
    pth = tmp_path / "w.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "head.weight": torch.zeros(2, 2)}, pth)
    with pytest.raises(WeightsError, match="weights do not fit timm model 'wide_resnet50_2': missing keys"):
        convert(pth, "wide_resnet50_2", tmp_path / "w.safetensors", "http://example.invalid/w.pth")
    assert not (tmp_path / "w.safetensors").exists()


def test_old_and_data_parallel_checkpoints_are_completed():
    import timm

    state = timm.create_model("efficientnet_b4", pretrained=False).state_dict()
    old = {f"module.{key}": value for key, value in state.items() if not key.endswith("num_batches_tracked")}
    fixed = to_timm_state_dict(old, "efficientnet_b4", "test")
    assert list(fixed) == list(state)
    assert all(torch.equal(fixed[key], state[key]) for key in state if not key.endswith("num_batches_tracked"))
