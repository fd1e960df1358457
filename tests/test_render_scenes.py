"""Every scenario renders: good images have empty masks; every defect type has a non-empty mask on the object that
matches the image difference against the same plan rendered without the defect; UB and US draw from the split's
pool; the same plan gives the same bytes."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from miad.catalog import SCENARIOS
from miad.config import RenderConfig
from miad.data.layout import GOOD
from miad.render.plan import SamplePlan

RESOLUTION = 96
CFG = RenderConfig(resolution=RESOLUTION, samples=8)
CHANGED_LEVEL = 30  # 8-bit |difference| that counts as a changed pixel
MIN_MEAN_ABS_DIFF = 10.0  # mean |defective - good| over the mask
NEAR_OBJECT_PX = RESOLUTION // 8  # a displaced part stays this close to the intact object
MIN_CHANGE_IN_MASK = 0.5  # share of changed pixels within a few pixels of the mask (shadows and reflections aside)
# Displaced parts are masked where they are (MVTec LOCO): the place they left changes too, on the intact object
DISPLACED = {"loose_clamp", "loose_nut"}
DEFECT_CASES = [(s, d) for s, info in SCENARIOS.items() for d in info.defect_types]


def test_registry_matches_catalog() -> None:
    from miad.render.scenarios import SCENE_BUILDER_KEYS, scene_builder

    assert set(SCENE_BUILDER_KEYS) == set(SCENARIOS)
    for key in SCENE_BUILDER_KEYS:
        builder = scene_builder(key)
        assert builder.key == key
        assert builder.defect_types == SCENARIOS[key].defect_types
        assert builder.light == SCENARIOS[key].light
        assert builder.object_radius > 0


def test_unknown_factor_raises(tmp_path: Path) -> None:
    from miad.render.scene import ScenarioRenderer

    with pytest.raises(ValueError, match="unknown factor"):
        ScenarioRenderer("electrical_insulator", ("uv", "fog"), CFG, tmp_path)


@pytest.fixture(scope="module")
def renderer_for(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str, tuple[str, ...]], Any]]:
    """One live renderer at a time (building one clears the previous scene): rebuilt when the key changes."""
    from miad.render.scene import ScenarioRenderer

    live: dict[tuple[str, tuple[str, ...]], Any] = {}

    def get(scenario: str, factors: tuple[str, ...]) -> Any:
        key = (scenario, factors)
        if key not in live or not live[key].is_live:
            live.clear()
            live[key] = ScenarioRenderer(scenario, factors, CFG, tmp_path_factory.mktemp("bproc"))
        return live[key]

    yield get


def _digest(sample: Any) -> str:
    return hashlib.sha256(sample.image.tobytes() + sample.mask.tobytes()).hexdigest()


@pytest.mark.slow
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_good_render(scenario: str, renderer_for: Callable[[str, tuple[str, ...]], Any]) -> None:
    renderer = renderer_for(scenario, SCENARIOS[scenario].factors)
    plan = SamplePlan(index=0, split="train", defect_type=GOOD, seed=11)
    sample = renderer.render(plan)
    assert sample.image.shape == (RESOLUTION, RESOLUTION, 3) and not sample.mask.any()
    assert sample.record["defect"] is None and sample.record["defect_pixels"] == 0
    coverage = sample.record["object_pixels"] / RESOLUTION**2
    assert 0.005 < coverage < 0.8, f"{scenario}: the object covers {coverage:.1%} of the frame"  # wires: ~1-3%
    assert _digest(renderer.render(plan)) == _digest(sample), "same plan, same bytes"


@pytest.mark.slow
@pytest.mark.parametrize(("scenario", "defect"), DEFECT_CASES)
def test_defect_mask_is_exact(scenario: str, defect: str, renderer_for: Callable[[str, tuple[str, ...]], Any]) -> None:
    renderer = renderer_for(scenario, SCENARIOS[scenario].factors)
    plan = SamplePlan(index=3, split="test", defect_type=defect, seed=101 + DEFECT_CASES.index((scenario, defect)))
    broken = renderer.render(plan)
    broken_categories = renderer.last_category_map
    intact = renderer.render(plan, defect_override=GOOD)
    intact_categories = renderer.last_category_map
    on = broken.mask > 0
    # Non-empty, binary, the defect's own segmentation id, recorded
    assert on.any() and set(np.unique(broken.mask)) == {0, 255}
    assert broken.record["defect"]["type"] == defect and broken.record["defect_pixels"] == int(on.sum())
    assert np.all(broken_categories[on] == renderer.defect_category_id)
    # Same view, light, background and surface without the defect
    assert not intact.mask.any()
    for key in ("camera", "light", "background", "surface"):
        assert intact.record[key] == broken.record[key], key
    # On the object: every mask pixel is on (or, for a displaced part, next to) the intact object
    near = cv2.dilate((intact_categories > 0).astype(np.uint8), np.ones((2 * NEAR_OBJECT_PX + 1,) * 2, np.uint8))
    assert near[on].all(), f"{scenario}/{defect}: mask pixels away from the object"
    # The mask matches the image difference: what changed, changed there
    diff = np.abs(broken.image.astype(int) - intact.image.astype(int)).max(axis=-1)
    assert diff[on].mean() > MIN_MEAN_ABS_DIFF, f"{scenario}/{defect}: the defect is not visible in the mask"
    changed = diff > CHANGED_LEVEL
    around = cv2.dilate(on.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    if defect in DISPLACED:
        around |= cv2.dilate((intact_categories > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    share = changed[around].sum() / max(int(changed.sum()), 1)
    assert share >= MIN_CHANGE_IN_MASK, f"{scenario}/{defect}: only {share:.0%} of the changed pixels near the mask"


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["witness_mark", "nut_and_bolt"])  # a day and a night scene
def test_background_and_surface_come_from_the_split_pool(
    scenario: str, renderer_for: Callable[[str, tuple[str, ...]], Any]
) -> None:
    renderer = renderer_for(scenario, ("uv", "ub", "us"))
    for split in ("train", "test"):
        record = renderer.render(SamplePlan(index=0, split=split, defect_type=GOOD, seed=7)).record
        background, surface = record["background"], record["surface"]
        assert background["pool"] == split and surface["pool"] == split
        assert f"/{split}/" in surface["name"]
        if SCENARIOS[scenario].light == "day":
            assert f"/{split}/" in background["name"]
        else:
            assert background["kind"] == "night_layout"


@pytest.mark.slow
def test_factors_change_pixels_and_controlled_is_fixed(renderer_for: Callable[[str, tuple[str, ...]], Any]) -> None:
    plan_a = SamplePlan(index=0, split="train", defect_type=GOOD, seed=1)
    plan_b = SamplePlan(index=1, split="test", defect_type=GOOD, seed=2)
    controlled = renderer_for("witness_mark", ())
    a, b = controlled.render(plan_a), controlled.render(plan_b)
    assert a.record["background"] == b.record["background"] == {"kind": "controlled"}
    assert a.record["surface"] == {"kind": "controlled"} and a.record["camera"] == b.record["camera"]
    clean = a.image
    for factor in ("ub", "us"):
        changed = renderer_for("witness_mark", (factor,)).render(plan_a)
        assert np.abs(changed.image.astype(int) - clean.astype(int)).mean() > 1.0, factor
