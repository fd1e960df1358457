"""`miad stats`: per-dataset counts, defect pixel ratio beside the paper's, coverage, angle histograms, leak check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from miad.cli import main
from miad.config import load_params
from miad.data.stats import collect_stats
from miad.render.shard import render_dataset
from tests.conftest import tiny_params_dict


@pytest.fixture
def rendered(tmp_path: Path, fake_factory) -> tuple[Path, Path]:
    data = tiny_params_dict(resolution=32)
    data.update(scenarios=["electrical_insulator", "witness_mark"])
    data["table7"]["scenarios"] = ["electrical_insulator"]
    data["ablation"].update(scenarios=["witness_mark"], variants=["baseline"])
    params_path = tmp_path / "params.yaml"
    params_path.write_text(yaml.safe_dump(data), encoding="utf-8")
    params = load_params(params_path)
    renders = tmp_path / "renders"
    for variant, scenario in (("main", "electrical_insulator"), ("main", "witness_mark"), ("baseline", "witness_mark")):
        render_dataset(params, variant, scenario, renders, renderer_factory=fake_factory, progress=False)
    return params_path, renders


def test_stats_numbers(rendered: tuple[Path, Path]) -> None:
    _, renders = rendered
    stats = collect_stats(renders, [("main", "electrical_insulator")])
    row = stats["main/electrical_insulator"]
    assert row["train"]["images"] == 5 and row["test"]["images"] == 6
    assert row["test"]["per_type"] == {"broken_shed": 3, "good": 3}
    ratio = 25 / 32**2  # the fake renderer's 5x5 defect square
    assert row["test"]["defect_pixel_ratio"] == pytest.approx({"mean": ratio, "min": ratio, "max": ratio})
    assert row["defect_ratio_vs_paper"] == pytest.approx(ratio / 0.0004)
    assert row["within_3x_of_paper"] is False
    assert row["test"]["object_coverage"]["mean"] == pytest.approx(0.25)
    assert sum(row["train"]["theta_histogram"]["counts"]) == 5
    assert row["leak_free"] and row["factors"] == ["uv", "ub", "us"]


def test_stats_command_writes_params_datasets(rendered: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    params_path, renders = rendered
    out = tmp_path / "stats.json"
    assert main(["stats", "--params", str(params_path), "--renders", str(renders), "--out", str(out)]) == 0
    stats = json.loads(out.read_text())
    assert sorted(stats) == ["baseline/witness_mark", "main/electrical_insulator", "main/witness_mark"]
    assert stats["baseline/witness_mark"]["factors"] == [] and stats["baseline/witness_mark"]["leaks"] == {}
    assert "main/witness_mark" in capsys.readouterr().out


def test_stats_command_names_missing_dataset(rendered: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    params_path, _ = rendered
    assert main(["stats", "--params", str(params_path), "--renders", str(tmp_path / "none")]) == 2
    assert "manifest" in capsys.readouterr().err
