"""Plan a rendered dataset as shards and render each shard atomically; reruns skip finished shards.

Every image's seed derives from params (root seed, variant, scenario, split, image index), so a
shard is one deterministic task: the same params render the same bytes, whichever worker runs it
and however often it is interrupted. A shard counts as finished only when its archive exists under
its final name, its spec hash matches the current plan and every member matches its sha256.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from miad.catalog import PLAN_VARIANT, SCENARIOS, applied_factors, light_is_controlled
from miad.config import Params, RenderConfig, to_dict
from miad.data.layout import GOOD, SPLITS, shard_name, split_dir
from miad.data.manifest import build_manifest, write_manifest
from miad.data.shards import ShardError, ShardItem, check_shard, shard_item, spec_hash, write_shard
from miad.render.plan import RenderedSample, SamplePlan
from miad.render.pools import pools_digest
from miad.seeding import derive_seed

# Bump when a change to the renderer changes pixels for the same params: every shard re-renders.
RENDERER_VERSION = 4  # 2: seven scenarios, UB and US; 3: fixed world light-sampling map; 4: float64 poses
# Render settings that change no pixel (checked by the determinism tests) stay out of the spec; the asset
# directories enter it through the digest of the pool files they hold, not through their paths.
SPEC_EXCLUDED_RENDER_KEYS = ("threads", "shard_size", "assets_dir", "hdri_dir")


class Renderer(Protocol):
    def render(self, plan: SamplePlan) -> RenderedSample: ...


RendererFactory = Callable[[str, tuple[str, ...], RenderConfig, Path], Renderer]


@dataclass(frozen=True)
class ShardTask:
    """One shard to render: where it goes, which images, and the hash of everything that shapes them."""

    split: str
    shard_index: int
    plans: tuple[SamplePlan, ...]
    spec: dict[str, Any] = field(hash=False)
    spec_hash: str

    @property
    def file_name(self) -> str:
        return shard_name(self.shard_index)


def split_size(cfg: RenderConfig, split: str) -> int:
    return cfg.n_train if split == "train" else cfg.n_test_good + cfg.n_test_defective


def plan_split(params: Params, variant: str, scenario: str, split: str) -> list[SamplePlan]:
    """The images of one split in order: train is all good; test mixes good and each defect type.

    Every variant gets the same order and seeds, the plan's (catalog.PLAN_VARIANT): its images are counterfactuals of
    the main dataset's. The ablation variants also share one controlled light, drawn once per scenario."""
    cfg = params.active.render
    if split == "train":
        kinds = [GOOD] * cfg.n_train
    else:
        defects = SCENARIOS[scenario].defect_types
        kinds = [GOOD] * cfg.n_test_good + [defects[i % len(defects)] for i in range(cfg.n_test_defective)]
        order = np.random.default_rng(derive_seed(params.seed, "render", PLAN_VARIANT, scenario, split, "order"))
        kinds = [kinds[i] for i in order.permutation(len(kinds))]
    controlled = light_is_controlled(variant)
    light = derive_seed(params.seed, "render", PLAN_VARIANT, scenario, "light") if controlled else None
    return [
        SamplePlan(
            index=i,
            split=split,
            defect_type=kind,
            seed=derive_seed(params.seed, "render", PLAN_VARIANT, scenario, split, i),
            light_seed=light,
        )
        for i, kind in enumerate(kinds)
    ]


def plan_entry(plan: SamplePlan) -> list[Any]:
    """A plan as its shard spec lists it; the light seed only where set, so the main data's spec keeps its bytes."""
    entry: list[Any] = [plan.index, plan.defect_type, plan.seed]
    return entry if plan.light_seed is None else [*entry, plan.light_seed]


def plan_shards(params: Params, variant: str, scenario: str) -> list[ShardTask]:
    """All shard tasks of a dataset, both splits, with their spec hashes."""
    cfg = params.active.render
    render_spec = {k: v for k, v in to_dict(cfg).items() if k not in SPEC_EXCLUDED_RENDER_KEYS}
    factors = applied_factors(variant, scenario)
    assets = pools_digest(Path(cfg.assets_dir), cfg.hdri_dir) if {"ub", "us"} & set(factors) else None
    tasks = []
    for split in SPLITS:
        plans = plan_split(params, variant, scenario, split)
        for k in range(0, len(plans), cfg.shard_size):
            chunk = tuple(plans[k : k + cfg.shard_size])
            spec = {
                "renderer_version": RENDERER_VERSION,
                "variant": variant,
                "scenario": scenario,
                "split": split,
                "shard": k // cfg.shard_size,
                "factors": list(factors),
                "assets": assets,
                "render": render_spec,
                "plans": [plan_entry(p) for p in chunk],
            }
            tasks.append(ShardTask(split, k // cfg.shard_size, chunk, spec, spec_hash(spec)))
    return tasks


@dataclass
class RenderReport:
    """What a render run did; `cycles_seconds` is the time spent inside Cycles' render calls."""

    rendered_images: int = 0
    skipped_shards: int = 0
    rendered_shards: int = 0
    wall_seconds: float = 0.0
    cycles_seconds: float = 0.0
    setup_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def default_renderer_factory(scenario: str, factors: tuple[str, ...], cfg: RenderConfig, temp: Path) -> Renderer:
    from miad.render.scene import ScenarioRenderer  # bpy loads only when something must be rendered

    return ScenarioRenderer(scenario, factors, cfg, temp)


def _items(task: ShardTask, renderer: Renderer, report: RenderReport, bar: tqdm) -> Iterator[ShardItem]:
    for plan in task.plans:
        sample = renderer.render(plan)
        report.rendered_images += 1
        report.cycles_seconds += sample.cycles_seconds
        bar.update(1)
        yield shard_item(
            sample.image,
            sample.mask,
            stem=plan.stem,
            split=plan.split,
            label=plan.label,
            defect_type=plan.defect_type,
            seed=plan.seed,
            record=sample.record,
        )


ShardRunner = Callable[[list[ShardTask]], None]  # renders the given shards elsewhere (other processes, Slurm)


def shard_path(renders: Path, variant: str, scenario: str, task: ShardTask) -> Path:
    return split_dir(renders, variant, scenario, task.split) / task.file_name


def is_finished(renders: Path, variant: str, scenario: str, task: ShardTask) -> bool:
    """A shard is finished when its archive exists, its spec hash is the plan's and every sha256 matches."""
    return not check_shard(shard_path(renders, variant, scenario, task), task.spec_hash)


def render_dataset(
    params: Params,
    variant: str,
    scenario: str,
    renders: Path,
    *,
    renderer_factory: RendererFactory = default_renderer_factory,
    progress: bool = True,
    only: tuple[str, int] | None = None,
    shard_runner: ShardRunner | None = None,
) -> RenderReport:
    """Render every unfinished shard of `variant/scenario` under `renders`, then write the manifests.

    `only=(split, index)`: render that one shard if unfinished, and nothing else (no manifests): one task of a
    fan-out. `shard_runner`: hand the unfinished shards to it (an executor) instead of rendering them here; every
    one must be finished when it returns."""
    start = time.perf_counter()
    cfg = params.active.render
    factors = applied_factors(variant, scenario)
    tasks = plan_shards(params, variant, scenario)
    if only is not None:
        tasks = [t for t in tasks if (t.split, t.shard_index) == only]
        if not tasks:
            raise ShardError(f"{variant}/{scenario}: no shard {only[0]}/{only[1]} in the plan")
    todo = [t for t in tasks if not is_finished(renders, variant, scenario, t)]
    report = RenderReport(skipped_shards=len(tasks) - len(todo))
    if shard_runner is not None and todo:
        shard_runner(todo)
        unfinished = [t for t in todo if not is_finished(renders, variant, scenario, t)]
        if unfinished:
            names = [f"{t.split}/{t.file_name}" for t in unfinished]
            raise ShardError(f"{variant}/{scenario}: shard(s) {names} still unfinished after the fan-out")
        report.rendered_shards = len(todo)
        report.rendered_images = sum(len(t.plans) for t in todo)
        todo = []
    total = sum(len(t.plans) for t in todo)
    with (
        tempfile.TemporaryDirectory(prefix="miad-bproc-") as temp,
        tqdm(
            total=total,
            desc=f"render {variant}/{scenario}",
            unit="img",
            disable=not progress or total == 0,
            dynamic_ncols=True,
        ) as bar,
    ):
        renderer: Renderer | None = None
        for task in todo:
            if renderer is None:
                setup = time.perf_counter()
                renderer = renderer_factory(scenario, factors, cfg, Path(temp))
                report.setup_seconds = time.perf_counter() - setup
            header = {"spec": task.spec, "spec_hash": task.spec_hash}
            path = split_dir(renders, variant, scenario, task.split) / task.file_name
            write_shard(path, header, _items(task, renderer, report, bar))
            report.rendered_shards += 1
    if only is not None:
        report.wall_seconds = time.perf_counter() - start
        return report
    for split in SPLITS:
        directory = split_dir(renders, variant, scenario, split)
        wanted = [t.file_name for t in tasks if t.split == split]
        for stale in directory.iterdir():  # shards of an older, larger plan, and leftovers of killed runs
            if stale.name not in wanted and stale.name != "manifest.json":
                stale.unlink()
        header = {
            "variant": variant,
            "scenario": scenario,
            "split": split,
            "factors": list(factors),
            "resolution": cfg.resolution,
        }
        write_manifest(directory, build_manifest(directory, header, wanted))
    report.wall_seconds = time.perf_counter() - start
    return report
