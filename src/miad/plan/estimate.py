"""Price every stage of the pipeline from measured unit costs; each figure says if it is measured or extrapolated.

Scaling rules (the extrapolations): Cycles time grows with samples per pixel and, between measured resolutions,
with the pixel count; network time and activations with the input pixel count and the epochs; rendered bytes and
anomaly maps with the pixel count. PatchCore's bank is computed for the stage's backbone, input size and image
count (`miad.plan.patchcore_bank`): its memory, its saved size and its greedy coreset's reads, timed at the
measured coreset rate. Not priced: the paper's larger backbones' forward passes (wide_resnet50_2 instead of the
smoke ones) and any GPU, which no bench here measured: GPU stages show their CPU core-hours as the only measured
basis.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from miad.config import Params
from miad.plan.patchcore_bank import bank_sizes, feature_geometry

COSTS = Path(__file__).with_name("costs.yaml")
GB = 1e9


@dataclass
class Estimate:
    """One DVC stage's bill."""

    stage: str
    group: str  # dvc.yaml's stage name (foreach/matrix groups share it)
    tasks: int  # render: shard tasks; other stages: one process
    core_hours: float  # CPU core-hours (on the measured CPU)
    gpu: bool  # the profile runs it on a GPU (its hours are not measured: see core_hours)
    memory_gb: float  # peak resident memory of one task
    storage_gb: float  # what it writes (kept in the workspace and the DVC cache)
    basis: list[str] = field(default_factory=list)  # which figures are measured / extrapolated, and how
    threads: int | None = 1  # cores one task can use; None: all it is given (Cycles renders)
    after: list[str] = field(default_factory=list)  # the stages whose outputs this one reads

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_costs(path: Path = COSTS) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def _render(argv: list[str], params: Params, costs: dict[str, Any]) -> tuple[int, float, float, float, list[str]]:
    cfg, unit = params.active.render, costs["render"]
    scenario = _option(argv, "--scenario") or ""
    images = cfg.n_train + cfg.n_test_good + cfg.n_test_defective
    shards = math.ceil(cfg.n_train / cfg.shard_size) + math.ceil(
        (cfg.n_test_good + cfg.n_test_defective) / cfg.shard_size
    )
    measured = {int(k): v for k, v in unit["images_per_second"].items()}
    nearest = min(measured, key=lambda r: abs(r - cfg.resolution))
    rate = measured[nearest][scenario] / (cfg.resolution / nearest) ** 2 / (cfg.samples / unit["samples"])
    seconds = images / rate + shards * unit["shard_setup_seconds"]
    basis = [f"render rate measured at {nearest} px, {unit['samples']} spp on {unit['device']}"]
    if nearest != cfg.resolution or cfg.samples != unit["samples"]:
        basis.append(f"extrapolated to {cfg.resolution} px, {cfg.samples} spp (time x pixels x samples)")
    per_image = unit["bytes_per_image"][128][scenario] * (cfg.resolution / 128) ** 2
    basis.append("storage " + ("measured" if cfg.resolution == 128 else "extrapolated from 128 px (x pixels)"))
    return shards, seconds * unit["cores"] / 3600, unit["peak_rss_gb"], images * per_image / GB, basis


def _network_scale(params: Params, method: str, costs: dict[str, Any]) -> tuple[Any, float]:
    config = getattr(params.active.train, method)
    return config, (config.image_size / costs["methods"]["image_size"]) ** 2


def _train(argv: list[str], params: Params, costs: dict[str, Any]) -> tuple[int, float, float, float, list[str]]:
    unit = costs["methods"]
    method = _option(argv, "--method") or ""
    config, scale = _network_scale(params, method, costs)
    scenarios = len(params.scenarios) if "--all-scenarios" in argv else max(1, argv.count("--scenario"))
    per_scenario = math.floor(params.active.render.n_train * float(_option(argv, "--fraction") or 1.0))
    cap = None if "--no-cap" in argv else config.max_train_images
    images = min(per_scenario, cap) * scenarios if cap else per_scenario * scenarios
    epochs = getattr(config, "epochs", 1)
    rate = unit["rates"][method]
    seconds = images * epochs * scale / rate["train"] + unit["process_seconds"]
    memory = 0.7 + (rate["peak_rss_gb"] - 0.7) * scale
    model = unit["model_bytes"][method]
    basis = [
        f"training rate measured at {unit['image_size']} px on {unit['device']} ({unit['threads']} threads)",
        f"extrapolated: {images} images x {epochs} epochs x {scale:.1f} (pixels); backbone size not priced",
    ]
    if method == "patchcore":
        channels, stride = feature_geometry(config.backbone, tuple(config.layers))
        bank = bank_sizes(max(1, images), config.image_size, channels, stride, config.coreset_ratio)
        coreset = costs["patchcore_coreset"]
        seconds += bank.coreset_elements / coreset["elements_per_second"]
        memory += bank.peak_bytes / GB
        model = bank.memory_bank_bytes
        basis.append(
            f"bank computed: {bank.n_patches:,} patches x {bank.channels} channels, "
            f"{'two-pass' if bank.streamed else 'one-piece'}, {bank.peak_bytes / GB:.1f} GB at its peak "
            f"(GPU memory when trained on a GPU); coreset {bank.coreset_size:,} picks on k = {bank.projected_dim}, "
            f"timed at the coreset rate measured on {coreset['device']}"
        )
    return 1, seconds * unit["threads"] / 3600, memory, model / GB, basis


def _evaluate(argv: list[str], params: Params, costs: dict[str, Any]) -> tuple[int, float, float, float, list[str]]:
    unit = costs["methods"]
    method = _option(argv, "--method") or ""
    _, scale = _network_scale(params, method, costs)
    render = params.active.render
    images = render.n_test_good + render.n_test_defective
    rate = unit["rates"][method]
    seconds = images * scale / rate["inference"] + unit["process_seconds"]
    memory = 0.7 + (rate["peak_rss_gb"] - 0.7) * scale
    storage = images * unit["evaluation_bytes_per_test_image"] * (render.resolution / 128) ** 2
    basis = [f"inference rate measured at {unit['image_size']} px on {unit['device']}; extrapolated x{scale:.1f}"]
    return 1, seconds * unit["threads"] / 3600, memory, storage / GB, basis


def estimate_stage(name: str, cmd: str, params: Params, costs: dict[str, Any]) -> Estimate:
    """The bill of one stage from its command line (as dvc.yaml renders it) and the profile's params."""
    argv = shlex.split(cmd)
    command = argv[1] if len(argv) > 1 and argv[0] == "miad" else ""
    group = name.split("@")[0]
    pricing = {"render": _render, "dataset": _render, "train": _train, "evaluate": _evaluate}.get(command)
    gpu = command in ("train", "evaluate") and params.active.train.device == "cuda"
    gpu = gpu or (command in ("render", "dataset") and params.active.render.device == "gpu")
    if pricing is None:  # stats, report: one light process
        hours = costs["methods"]["process_seconds"] / 3600
        return Estimate(name, group, 1, hours, False, 1.0, 0.0, ["one light process; not measured separately"])
    tasks, hours, memory, storage, basis = pricing(argv, params, costs)
    if gpu:
        basis.append("runs on a GPU in this profile: GPU hours not measured, CPU core-hours shown as the basis")
    threads = None if command in ("render", "dataset") else params.active.numeric.threads
    return Estimate(name, group, tasks, hours, gpu, memory, storage, basis, threads)


def estimate_pipeline(root: Path, params: Params, costs: dict[str, Any] | None = None) -> list[Estimate]:
    """Every stage of the DVC pipeline in `root` (DVC's own rendering of dvc.yaml: foreach and matrix expanded)."""
    from dvc.repo import Repo

    costs = costs or load_costs()
    with Repo(str(root)) as repo:
        stages = [s for s in repo.index.stages if getattr(s, "cmd", None)]
        outs = {s.addressing: [str(o.def_path) for o in s.outs] for s in stages}
        rows = []
        for stage in stages:
            cmd = stage.cmd if isinstance(stage.cmd, str) else " && ".join(stage.cmd)
            row = estimate_stage(stage.addressing, cmd, params, costs)
            deps = [str(d.def_path) for d in stage.deps]
            row.after = [name for name, paths in outs.items() if any(_overlap(d, p) for d in deps for p in paths)]
            rows.append(row)
    return rows


def _overlap(dep: str, out: str) -> bool:
    """A stage reading `dep` reads (part of) `out`: the same path, or one lies inside the other."""
    dep, out = dep.rstrip("/"), out.rstrip("/")
    return dep == out or dep.startswith(out + "/") or out.startswith(dep + "/")
