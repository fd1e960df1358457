"""The GPU check, step by step: probe, render with OptiX and with CUDA, train + evaluate twice, summarise."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from miad.atomic import write_json_atomic
from miad.gpucheck import GpuCheckError
from miad.gpucheck.render import SCENARIO

BACKENDS = ("OPTIX", "CUDA")
METHOD = "fastflow"  # a trained method on the paper backbone: features, flows, Adam, checkpoint, maps
RENDER_TIMEOUT_S = 240  # per backend
N_TEST = 4  # test images per class


def check_params(data: dict[str, Any], n_train: int, weights: Path | None) -> dict[str, Any]:
    """params.yaml's paper profile on the GPU: `n_train` training images in one shard, one epoch of METHOD."""
    paper = {**data["paper"]}
    paper["render"] = {
        **paper["render"],
        "n_train": n_train,
        "n_test_good": N_TEST,
        "n_test_defective": N_TEST,
        "shard_size": max(n_train, 2 * N_TEST),  # one shard per split
        "device": "gpu",
    }
    method = {**paper["train"][METHOD], "epochs": 1}
    if weights is not None:
        method["weights"] = str(weights)
    paper["train"] = {**paper["train"], "device": "cuda", METHOD: method}
    sections = {key: {**data[key], "scenarios": [SCENARIO]} for key in ("table7", "ablation")}
    return {**data, "profile": "paper", "paper": paper, "scenarios": [SCENARIO], **sections}


def image_difference(a: Path, b: Path) -> dict[str, float]:
    """Mean and max absolute pixel difference between the train images of two renders of the same plan."""
    from miad.data.dataset import ShardDataset
    from miad.data.layout import split_dir

    first = ShardDataset(split_dir(a, "main", SCENARIO, "train"))
    second = ShardDataset(split_dir(b, "main", SCENARIO, "train"))
    diffs = [np.abs(first[i].image.astype(np.int16) - second[i].image) for i in range(min(len(first), len(second)))]
    stacked = np.stack(diffs)
    return {"mean_abs": float(stacked.mean()), "max_abs": float(stacked.max())}


def _render(params_path: Path, renders: Path, backend: str, project: Path, work: Path) -> dict[str, Any]:
    out = work / f"render-{backend.lower()}.json"
    command = [sys.executable, "-m", "miad.gpucheck.render", str(params_path), str(renders), backend, str(out)]
    try:
        proc = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=RENDER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"device_type": backend, "error": f"timed out after {RENDER_TIMEOUT_S}s"}
    if proc.returncode != 0:
        return {"device_type": backend, "error": proc.stderr.strip()[-1500:]}
    return json.loads(out.read_text(encoding="utf-8"))


def run_check(project: Path, work: Path | None, n_train: int) -> dict[str, Any]:
    """Every step; raises GpuCheckError when there is no GPU. Returns the summary (also written to work)."""
    from miad.gpucheck.probe import nvidia_gpus, torch_cuda_device

    start = time.perf_counter()
    summary: dict[str, Any] = {"gpus": nvidia_gpus(), "torch_device": torch_cuda_device()}
    if not (project / "data").is_dir():
        raise GpuCheckError(f"{project / 'data'}: missing; run `miad assets restore` in {project} first")
    work = Path(tempfile.mkdtemp(prefix="miad-gpucheck-")) if work is None else work
    work.mkdir(parents=True, exist_ok=True)
    weights = project / "weights" / "wide_resnet50_2.safetensors"
    if not weights.is_file():
        from miad.rehearsal.weights import write_random_weights

        weights = write_random_weights("wide_resnet50_2", work / "weights" / "wide_resnet50_2.safetensors", 0)
        summary["weights"] = "randomly initialised wide_resnet50_2 (no ImageNet weights in weights/)"
    data = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    params_path = work / "params.yaml"
    params_path.write_text(yaml.safe_dump(check_params(data, n_train, weights.resolve()), sort_keys=False))
    renders = {backend: work / f"renders-{backend.lower()}" for backend in BACKENDS}
    summary["render"] = [_render(params_path, renders[b], b, project, work) for b in BACKENDS]
    if all("error" not in r for r in summary["render"]):
        summary["optix_vs_cuda_pixels"] = image_difference(renders["OPTIX"], renders["CUDA"])
    source = next((renders[r["device_type"]] for r in summary["render"] if "error" not in r), None)
    if source is None:
        raise GpuCheckError("no backend rendered: " + "; ".join(r["error"][-300:] for r in summary["render"]))
    summary["train"] = train_twice(params_path, source, work)
    summary["seconds"] = time.perf_counter() - start
    write_json_atomic(work / "gpucheck.json", summary)
    summary["folder"] = str(work)
    return summary


def train_twice(params_path: Path, renders: Path, work: Path) -> dict[str, Any]:
    """METHOD trained and evaluated twice on the same shards; rates, peak memory, and whether the bits agree."""
    from miad.config import load_params
    from miad.gpucheck.train import deterministic, train_and_evaluate

    params = load_params(params_path)
    config = getattr(params.active.train, METHOD)
    device = params.active.train.device
    runs = [train_and_evaluate(METHOD, config, renders, SCENARIO, work / f"model-{i}", device) for i in range(2)]
    return {"method": METHOD, "runs": [dataclasses.asdict(r) for r in runs], **deterministic(*runs)}
