"""Shared fixtures: tiny params files and a fake renderer that needs no Blender."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from miad.config import Params, RenderConfig, load_params
from miad.render.factors import sample_angle
from miad.render.plan import RenderedSample, SamplePlan
from tests.project_copy import REPO, copy_project


def tiny_params_dict(**render: int) -> dict:
    """params.yaml with the smoke profile shrunk to a few images (render keys overridable)."""
    data = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    data["smoke"]["render"].update(
        {
            "resolution": 48,
            "samples": 4,
            "shard_size": 3,
            "n_train": 5,
            "n_test_good": 3,
            "n_test_defective": 3,
            **render,
        }
    )
    return data


@pytest.fixture(scope="session", autouse=True)
def asset_library() -> Path:
    """data/ as data.dvc pins it (backgrounds and textures that UB, US and DRAEM read), rebuilt here when a fresh
    clone lacks it: the same bytes `miad assets restore` gives, without needing a DVC remote."""
    from miad import assets

    root, dvc_file = REPO / "data", REPO / "data.dvc"
    if not root.is_dir() or assets.compare(root, assets.pinned_files(dvc_file)):
        assets.build(root)
        assets.check(root, dvc_file)
    return root


@pytest.fixture
def params_file(tmp_path: Path) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tiny_params_dict()), encoding="utf-8")
    return path


@pytest.fixture
def tiny_params(params_file: Path) -> Params:
    return load_params(params_file)


class FakeRenderer:
    """Deterministic noise images; a defective plan gets a bright square and its mask."""

    def __init__(self, scenario: str, factors: tuple[str, ...], cfg: RenderConfig, temp: Path) -> None:
        self.size = cfg.resolution
        self.calls = 0

    def render(self, plan: SamplePlan) -> RenderedSample:
        self.calls += 1
        rng = np.random.default_rng(plan.seed)
        image = rng.integers(0, 120, (self.size, self.size, 3), dtype=np.uint8)
        mask = np.zeros((self.size, self.size), np.uint8)
        if plan.label:
            y, x = rng.integers(0, self.size - 6, 2)
            image[y : y + 5, x : x + 5] = 250
            mask[y : y + 5, x : x + 5] = 255
        camera = {"theta": sample_angle(rng, 0.0, 360.0, plan.split), "phi": sample_angle(rng, 0.0, 60.0, plan.split)}
        record = {
            "camera": camera,
            "defect_pixels": int(np.count_nonzero(mask)),
            "object_pixels": self.size * self.size // 4,
            "background": {"kind": "plate", "name": f"backgrounds/{plan.split}/bg_{plan.index % 3:03d}.png"},
            "surface": {"kind": "rust", "name": f"textures/rust/{plan.split}/rust_{plan.index % 2:03d}.png"},
        }
        return RenderedSample(image, mask, record, cycles_seconds=0.0)


@pytest.fixture
def fake_factory():
    made: list[FakeRenderer] = []

    def factory(scenario, factors, cfg, temp):
        made.append(FakeRenderer(scenario, factors, cfg, temp))
        return made[-1]

    factory.made = made  # type: ignore[attr-defined]
    return factory


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A copy of the project's sources in tmp_path/repo."""
    return copy_project(tmp_path / "repo")


@pytest.fixture(scope="session")
def native_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests.pipeline_slice run once per session by plain `dvc repro` (the reference other runtimes must match)."""
    from tests.pipeline_slice import TARGETS, prepare_slice, run

    repo = prepare_slice(tmp_path_factory.mktemp("native") / "repo")
    run(["dvc", "repro", *TARGETS], repo)
    return repo
