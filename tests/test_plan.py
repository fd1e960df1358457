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


def test_wall_clock_is_the_longer_of_spread_work_and_the_longest_chain() -> None:
    from miad.plan.estimate import Estimate
    from miad.plan.schedule import longest_chain_hours, wall_hours

    def stage(name: str, hours: float, threads: int | None, after: list[str]) -> Estimate:
        return Estimate(name, name, 1, hours, False, 1.0, 0.0, ["test"], threads, after)

    # a render (all cores), two trainings on it (2 threads each), a report after both
    rows = [
        stage("render", 4.0, None, []),
        stage("train_a", 6.0, 2, ["render"]),
        stage("train_b", 2.0, 2, ["render"]),
        stage("report", 0.5, 1, ["train_a", "train_b"]),
    ]
    assert longest_chain_hours(rows, 2) == 4.0 / 2 + 6.0 / 2 + 0.5
    assert wall_hours(rows, 2) == 12.5 / 2  # 6.25 h of spread work is longer than the 5.5 h chain
    assert longest_chain_hours(rows, 16) == 4.0 / 16 + 6.0 / 2 + 0.5  # a training is only 2 threads wide
    assert wall_hours(rows, 16) == longest_chain_hours(rows, 16)


def test_plan_prices_the_findings_profile_on_2_and_16_cores(repo_copy: Path) -> None:
    run(["git", "init", "-q"], repo_copy)
    bill = json.loads(run(["miad", "plan", "--profile", "findings", "--json"], repo_copy).splitlines()[-1])
    on_2, on_16 = bill["wall_hours"]["2"], bill["wall_hours"]["16"]
    assert bill["total"]["core_hours"] / 2 <= on_2 and on_16 < on_2
    report = next(s for s in bill["stages"] if s["stage"] == "report")
    assert report["after"] and all(s["after"] for s in bill["stages"] if s["group"].startswith("train"))
    table = run(["miad", "plan", "--profile", "findings", "--cores", "16"], repo_copy)
    assert "On 16 cores: about" in table and "On 2 cores" not in table
