"""The ablation variants are counterfactuals of one plan: image i of baseline, +UV, +UB, +US and main has the same
seed (defect type, placement, background and surface draws), the ablation variants share one controlled light, and
the main data keeps its own per-image light (and its bytes: its shard spec lists no light seed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from miad.catalog import ABLATION_SCENARIOS, VARIANT_FACTORS, light_is_controlled
from miad.config import Params
from miad.data.layout import shard_name, split_dir
from miad.data.shards import IndexEntry, read_index
from miad.render.shard import plan_shards, plan_split, render_dataset

ABLATION_VARIANTS = tuple(v for v in VARIANT_FACTORS if v != "main")


@pytest.mark.parametrize("scenario", ABLATION_SCENARIOS)
@pytest.mark.parametrize("split", ["train", "test"])
def test_every_variant_plans_the_same_images(tiny_params: Params, scenario: str, split: str) -> None:
    main = plan_split(tiny_params, "main", scenario, split)
    for variant in ABLATION_VARIANTS:
        plans = plan_split(tiny_params, variant, scenario, split)
        assert [(p.index, p.defect_type, p.seed) for p in plans] == [(p.index, p.defect_type, p.seed) for p in main]


def test_ablation_variants_share_one_controlled_light_and_main_has_none(tiny_params: Params) -> None:
    scenario = ABLATION_SCENARIOS[0]
    lights = {v: {p.light_seed for p in plan_split(tiny_params, v, scenario, "test")} for v in VARIANT_FACTORS}
    assert lights["main"] == {None} and not light_is_controlled("main")
    shared = {seed for v in ABLATION_VARIANTS for seed in lights[v]}
    assert len(shared) == 1 and None not in shared
    other = {p.light_seed for p in plan_split(tiny_params, "baseline", ABLATION_SCENARIOS[1], "test")}
    assert other != shared  # one light per scenario


def test_the_main_shard_spec_lists_no_light_seed(tiny_params: Params) -> None:
    """The main data's spec (and so its hash and its shards' bytes) is what it was before variants were paired."""
    for task in plan_shards(tiny_params, "main", ABLATION_SCENARIOS[0]):
        assert all(len(entry) == 3 for entry in task.spec["plans"])
    for task in plan_shards(tiny_params, "ub", ABLATION_SCENARIOS[0]):
        assert all(len(entry) == 4 for entry in task.spec["plans"])


def _rendered_test_shard(params: Params, variant: str, scenario: str, renders: Path) -> list[IndexEntry]:
    render_dataset(params, variant, scenario, renders, progress=False, only=("test", 0))
    return list(read_index(split_dir(renders, variant, scenario, "test") / shard_name(0)).entries)


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ABLATION_SCENARIOS)
def test_rendered_variants_differ_only_by_their_factor(tiny_params: Params, scenario: str, tmp_path: Path) -> None:
    """Blender renders one test shard of each variant; the shard indexes show the pairing."""
    shards = {v: _rendered_test_shard(tiny_params, v, scenario, tmp_path) for v in ("main", "baseline", "uv", "ub")}
    base, ub, uv, main = shards["baseline"], shards["ub"], shards["uv"], shards["main"]
    assert len(base) == 3 and any(e.label for e in base), "the shard should hold a defective image"
    for i, b in enumerate(base):
        assert b.seed == ub[i].seed == uv[i].seed == main[i].seed
        assert b.defect_type == ub[i].defect_type == uv[i].defect_type == main[i].defect_type
        # +UB: the same object, defect placement, camera, light and surface; another background
        for key in ("defect", "camera", "light", "surface"):
            assert b.record[key] == ub[i].record[key], f"{key} of baseline and +UB image {i}"
        assert b.record["background"] != ub[i].record["background"], f"background of baseline and +UB image {i}"
        # +UV: the camera moves, the controlled light stays where it is
        assert b.record["light"] == uv[i].record["light"]
        assert b.record["camera"] != uv[i].record["camera"]
        # main (all factors, the field): its view is +UV's, its light its own
        assert main[i].record["camera"] == uv[i].record["camera"]
    # The controlled baseline: every image has the same camera and the same light
    assert len({repr(e.record["camera"]) for e in base}) == 1
    assert len({repr(e.record["light"]) for e in base}) == 1
    assert len({repr(e.record["light"]) for e in main}) == len(main)


def _entry(stem: str, defect_type: str, seed: int) -> IndexEntry:
    return IndexEntry(stem, "test", int(defect_type != "good"), defect_type, seed, "0" * 64, "0" * 64, {})


def test_runs_declare_their_image_plan_and_share_it_only_with_the_same_images() -> None:
    from miad.stages.evaluate import image_plan

    plan = [_entry("test_000000", "good", 11), _entry("test_000001", "broken_shed", 12)]
    assert image_plan(plan) == image_plan(list(plan)) and len(image_plan(plan) or "") == 16
    assert image_plan(plan) != image_plan([plan[0], _entry("test_000001", "broken_shed", 13)])  # another seed
    assert image_plan(plan) != image_plan(plan[::-1])  # another order
    imported = [_entry("test_000000", "good", 0), _entry("test_000001", "broken_shed", 0)]
    assert image_plan(imported) is None  # imported images carry no seeds: nothing to pair by


def test_every_variant_of_a_scenario_is_resampled_alike(tiny_params: Params) -> None:
    """One bootstrap seed per image plan: the stored replicates of every variant are joint, resample by resample."""
    from miad.stages.evaluate import bootstrap_seed

    seeds = {scenario: bootstrap_seed(tiny_params, scenario) for scenario in ABLATION_SCENARIOS}
    assert len(set(seeds.values())) == len(seeds)


def test_pairing_narrows_a_factor_effect_only_when_the_variants_share_resamples() -> None:
    """Two variants whose replicates move together: jointly resampled the difference is tight, apart it is wide."""
    import numpy as np

    from miad.claims.evidence import Cell, Evidence
    from miad.claims.pairing import FactorEffect, factor_effects

    rng = np.random.default_rng(0)
    common = 0.85 + 0.05 * rng.standard_normal(2000)
    scenario = ABLATION_SCENARIOS[1]
    for group in ("plan:x", None):  # one image plan, or each variant its own split
        cells = {
            (f"{v}/{scenario}", "rd", "image_auroc"): Cell(
                value, common + value - 0.85 + 0.005 * rng.standard_normal(2000), group or f"split:{v}", "runs"
            )
            for v, value in (("baseline", 0.85), ("uv", 0.80))
        }
        (effect,) = factor_effects(Evidence(cells))
        assert effect.variant == "uv" and abs(effect.point + 0.05) < 1e-12
        paired, apart = FactorEffect.half_width(effect.paired), FactorEffect.half_width(effect.unpaired)
        assert paired is not None and apart is not None and apart > 0.05
        assert (paired < 0.02) if group else (paired > 0.05)
