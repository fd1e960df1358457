"""The electrical insulator renders: good images have empty masks, broken sheds have exact, visible masks, and the
same plan gives the same bytes, in this process and in another one."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from miad.config import RenderConfig
from miad.data.layout import GOOD
from miad.render.plan import RenderedSample, SamplePlan

RESOLUTION = 96
SAMPLES = 8
CFG = RenderConfig(resolution=RESOLUTION, samples=SAMPLES)
GOOD_PLAN = SamplePlan(index=0, split="train", defect_type=GOOD, seed=1234)
BROKEN_PLAN = SamplePlan(index=1, split="test", defect_type="broken_shed", seed=5678)
EDGE_PX = 2  # background pixels this close to the object may hold its anti-aliased edge (or a thin part)
DARK_LEVEL = 20  # 8-bit level below which a background pixel counts as black
MIN_MEAN_ABS_DIFF = 10.0  # mean |defective - good| over the mask, in 8-bit levels


def _digest(sample: RenderedSample) -> str:
    return hashlib.sha256(sample.image.tobytes() + sample.mask.tobytes()).hexdigest()


@pytest.fixture(scope="module")
def renderer_for(tmp_path_factory: pytest.TempPathFactory) -> Callable[[tuple[str, ...]], Any]:
    """One renderer per factor set, rebuilt if another test's renderer cleared its scene (one is live at a time)."""
    from miad.render.scene import ScenarioRenderer

    cache: dict[tuple[str, ...], ScenarioRenderer] = {}

    def get(factors: tuple[str, ...]) -> ScenarioRenderer:
        if factors not in cache or not cache[factors].is_live:
            cache[factors] = ScenarioRenderer("electrical_insulator", factors, CFG, tmp_path_factory.mktemp("bproc"))
        return cache[factors]

    return get


@pytest.fixture
def renderer(renderer_for: Callable[[tuple[str, ...]], Any]) -> Any:
    return renderer_for(("uv",))


@pytest.mark.slow
def test_good_render_has_empty_mask(renderer: Any) -> None:
    sample = renderer.render(GOOD_PLAN)
    assert sample.image.shape == (RESOLUTION, RESOLUTION, 3) and sample.image.dtype == np.uint8
    assert sample.mask.shape == (RESOLUTION, RESOLUTION) and sample.mask.dtype == np.uint8
    assert not sample.mask.any()
    assert sample.record["defect"] is None and sample.record["defect_pixels"] == 0
    assert sample.record["factors"]["uv"] and not sample.record["factors"]["ub"]
    assert sample.cycles_seconds > 0
    json.dumps(sample.record)  # JSON-ready
    lit = (renderer.last_category_map > 0).mean()
    assert 0.02 < lit < 0.6, f"insulator covers {lit:.1%} of the frame"
    background = renderer.last_category_map == 0
    pad = EDGE_PX
    padded = np.pad(background, pad, constant_values=True)
    inner = np.all(
        [
            padded[pad + dy : pad + dy + RESOLUTION, pad + dx : pad + dx + RESOLUTION]  # off anti-aliased edges
            for dy in range(-pad, pad + 1)
            for dx in range(-pad, pad + 1)
        ],
        axis=0,
    )
    assert sample.image[inner].max() < DARK_LEVEL, "the night background must stay black"


@pytest.mark.slow
def test_broken_shed_mask_is_exact_and_visible(renderer: Any) -> None:
    broken = renderer.render(BROKEN_PLAN)
    broken_categories = renderer.last_category_map
    intact = renderer.render(BROKEN_PLAN, defect_override=GOOD)
    intact_categories = renderer.last_category_map
    on = broken.mask > 0

    # Non-empty, binary, exactly the defect's segmentation id
    assert on.any() and set(np.unique(broken.mask)) == {0, 255}
    assert broken.record["defect_pixels"] == int(on.sum())
    assert np.all(broken_categories[on] == renderer.defect_category_id)
    # On the object: without the chip, every mask pixel shows the intact insulator
    assert intact.record["defect"] is None and not intact.mask.any()
    assert intact.record["camera"] == broken.record["camera"] and intact.record["light"] == broken.record["light"]
    assert np.all(intact_categories[on] > 0)
    # The fracture changes what the mask pixels look like
    diff = np.abs(broken.image.astype(int) - intact.image.astype(int))[on].mean()
    assert diff > MIN_MEAN_ABS_DIFF
    # Away from the chip's shed nothing moved (the mask's bounding box, widened, holds every changed pixel)
    rows, cols = np.nonzero(np.any(broken.image != intact.image, axis=-1))
    mrows, mcols = np.nonzero(on)
    margin = RESOLUTION // 4
    assert rows.min() >= mrows.min() - margin and rows.max() <= mrows.max() + margin
    assert cols.min() >= mcols.min() - margin and cols.max() <= mcols.max() + margin


@pytest.mark.slow
def test_same_plan_same_bytes_in_process(renderer: Any) -> None:
    first = renderer.render(BROKEN_PLAN)
    renderer.render(GOOD_PLAN)  # something else in between
    again = renderer.render(BROKEN_PLAN)
    assert _digest(first) == _digest(again)
    assert first.record == {**again.record}


@pytest.mark.slow
def test_same_plan_same_bytes_across_processes(renderer: Any, tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import hashlib
        from pathlib import Path
        from miad.config import RenderConfig
        from miad.render.plan import SamplePlan
        from miad.render.scene import ScenarioRenderer
        r = ScenarioRenderer("electrical_insulator", ("uv",), RenderConfig(resolution={RESOLUTION}, samples={SAMPLES}),
                             Path({str(tmp_path)!r}))
        s = r.render(SamplePlan({BROKEN_PLAN.index}, {BROKEN_PLAN.split!r}, {BROKEN_PLAN.defect_type!r},
                                {BROKEN_PLAN.seed}))
        print("DIGEST", hashlib.sha256(s.image.tobytes() + s.mask.tobytes()).hexdigest())
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    digest = [line.split()[1] for line in out.stdout.splitlines() if line.startswith("DIGEST")]
    assert digest == [_digest(renderer.render(BROKEN_PLAN))]


@pytest.mark.slow
def test_controlled_viewpoint_is_fixed(renderer_for: Callable[[tuple[str, ...]], Any]) -> None:
    fixed = renderer_for(())
    poses = [
        fixed.render(SamplePlan(i, split, GOOD, seed)).record["camera"]
        for i, split, seed in [(0, "train", 1), (1, "test", 2)]
    ]
    assert poses[0] == poses[1]
    assert not fixed.render(GOOD_PLAN).record["factors"]["uv"]


@pytest.mark.slow
def test_stale_renderer_refuses_to_render(renderer_for: Callable[[tuple[str, ...]], Any]) -> None:
    old = renderer_for(("uv",))
    renderer_for(())  # builds a new scene, clearing the old renderer's
    assert not old.is_live
    with pytest.raises(RuntimeError, match="newer ScenarioRenderer"):
        old.render(GOOD_PLAN)
