"""`miad plan`: the whole bill of the real dvc.yaml, per stage, from the committed unit costs."""

from __future__ import annotations

import json
from pathlib import Path

from miad.plan.estimate import estimate_stage, load_costs
from tests.pipeline_slice import run


def test_paper_bill_covers_every_stage_with_420_render_shards(repo_copy: Path) -> None:
    run(["git", "init", "-q"], repo_copy)
    bill = json.loads(run(["miad", "plan", "--profile", "paper", "--json"], repo_copy).splitlines()[-1])
    stages = run(["dvc", "stage", "list"], repo_copy).strip().splitlines()
    assert bill["total"]["stages"] == len(stages) == len(bill["stages"])
    render = [s for s in bill["stages"] if s["group"] == "render"]
    assert sum(s["tasks"] for s in render) == 7 * 60  # 15000 images per scenario in shards of 250
    assert all(s["core_hours"] > 0 and s["storage_gb"] >= 0 and s["basis"] for s in bill["stages"])
    table = run(["miad", "plan", "--profile", "paper"], repo_copy)
    assert "TOTAL" in table and "train_size" in table and "report" in table
    # PatchCore uncapped at 10,000 images: 12.3 GB of coreset projections and a 4.8 GB bank, over Slurm's 8 GB
    uncapped = next(s for s in bill["stages"] if s["stage"] == "train_uncapped@electrical_insulator-1.0")
    assert uncapped["memory_gb"] > 17 and bill["task_memory_gb"] == 8.0
    assert "train_uncapped@electrical_insulator-1.0" in bill["over_task_memory"]
    assert "WARNING" in table and "train_uncapped@electrical_insulator-1.0" in table


def test_scaling_rules(tiny_params) -> None:
    costs = load_costs()
    cmd = "miad train --method rd --scenario witness_mark --variant main --renders renders --out m"
    small = estimate_stage("train@rd-witness_mark", cmd, tiny_params, costs)
    part = estimate_stage("t", cmd + " --fraction 0.4", tiny_params, costs)  # 2 of the 5 training images
    overhead = costs["methods"]["process_seconds"] * costs["methods"]["threads"] / 3600
    assert abs((part.core_hours - overhead) / (small.core_hours - overhead) - 2 / 5) < 1e-9  # linear in images
    assert "measured" in small.basis[0] and "extrapolated" in small.basis[1]
    render = estimate_stage("render@witness_mark", "miad dataset --scenario witness_mark", tiny_params, costs)
    assert render.tasks == 2 + 2  # 5 train images and 6 test images in shards of 3
