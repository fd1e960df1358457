"""`miad compare`: the bitwise and the statistical verdict on synthetic metrics files whose answer is known, the
fallbacks where intervals are missing, the exit status, and a git revision as the reference."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.stats import binom

from miad.cli import main
from miad.reporting.compare import (
    BOTH,
    OURS,
    THEIRS,
    Cell,
    CompareError,
    committed_paths,
    compare_metrics,
    format_comparison,
    judge,
    parse_tolerances,
    z_critical,
)
from tests.conftest import tiny_params_dict

Z95 = z_critical(0.95)
SE = 0.02  # standard error of every synthetic cell
SE_DIFF = math.sqrt(2) * SE  # of the difference of two independent runs
KEYS = [  # 25 scenarios x 3 methods x 4 metrics; the first 299 make the table
    (f"main/s{i:02d}", method, metric)
    for i in range(25)
    for method in ("rd", "patchcore", "fastflow")
    for metric in ("image_auroc", "recall_at_fpr", "aupro", "pixel_auroc")
][:299]
NO_TOLERANCE = parse_tolerances(None)


def metrics_file(values, keys=KEYS, *, se: float = SE, confidence: float = 0.95, intervals: bool = True) -> dict:
    """A metrics.json: cell k holds values[k] and, with `intervals`, value +- z se (a normal interval at
    `confidence`)."""
    out: dict = {}
    for (dataset, method, metric), value in zip(keys, values, strict=True):
        cell = out.setdefault(dataset, {}).setdefault(method, {})
        cell[metric] = float(value)
        if intervals:
            half = z_critical(confidence) * se
            cell[f"{metric}_ci_low"], cell[f"{metric}_ci_high"] = float(value - half), float(value + half)
    return out


def reference_values(seed: int = 0, n: int = len(KEYS)) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.55, 0.9, n)


def with_outside(k: int, n: int = len(KEYS)) -> tuple[dict, dict]:
    """(ours, reference): every cell 0.5 combined standard errors away, k of them 2.5 away (signs alternating)."""
    ref = reference_values(n=n)
    z = np.full(n, 0.5)
    signs = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    picked = np.linspace(0, n - 1, k).astype(int)
    z[picked], signs[picked] = 2.5, np.where(np.arange(k) % 2 == 0, 1.0, -1.0)  # outside: above, below, above, ...
    return metrics_file(ref + signs * z * SE_DIFF, KEYS[:n]), metrics_file(ref, KEYS[:n])


def write(path: Path, metrics: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------- the verdicts
def test_identical_files_hold_both_verdicts():
    metrics = metrics_file(reference_values())
    comparison = compare_metrics(metrics, metrics, NO_TOLERANCE)
    stats = comparison.statistical()
    assert comparison.bitwise and stats.holds and comparison.reproduced
    assert comparison.identical() == len(comparison.cells) == 3 * 299
    assert len(stats.judgements) == 299 and stats.outside == [] and stats.p_value == 1.0
    assert all(j.rule == BOTH and j.z == 0.0 for j in stats.judgements)


def test_shifts_within_the_noise_fail_bitwise_and_hold_statistically():
    ref = reference_values()
    ours = ref + np.random.default_rng(1).normal(0.0, 0.3 * SE_DIFF, ref.size)
    comparison = compare_metrics(metrics_file(ours), metrics_file(ref), NO_TOLERANCE)
    assert not comparison.bitwise and len(comparison.differing()) == 3 * 299
    assert comparison.statistical().holds and comparison.reproduced
    assert not compare_metrics(metrics_file(ours), metrics_file(ref), NO_TOLERANCE, exact=True).reproduced


def test_a_systematic_shift_fails_statistically_and_shows_on_one_side():
    ref = reference_values()
    ours = ref.copy()
    ours[:60] += 4.0 * SE_DIFF  # 60 cells far above
    stats = compare_metrics(metrics_file(ours), metrics_file(ref), NO_TOLERANCE).statistical()
    assert len(stats.outside) == 60 and not stats.holds
    assert stats.signs(stats.outside) == (60, 0)
    noise = np.random.default_rng(2).normal(0.0, SE_DIFF, ref.size)
    moderate = ref + 1.5 * SE_DIFF + noise  # every cell a little high: about a third land outside, nearly all above
    stats = compare_metrics(metrics_file(moderate), metrics_file(ref), NO_TOLERANCE).statistical()
    above, below = stats.signs(stats.outside)
    assert not stats.holds and above > 60 and below <= 1
    uniform = compare_metrics(metrics_file(ref + 1.5 * SE_DIFF), metrics_file(ref), NO_TOLERANCE)
    assert uniform.statistical().outside == []  # each cell within the noise: only the signs tell
    assert "yours higher in 299, lower in 0" in format_comparison(uniform, "ref")


def test_one_cell_far_outside_fails_however_many_are_inside():
    ref = reference_values()
    ours = ref.copy()
    ours[7] += 10 * SE_DIFF
    stats = compare_metrics(metrics_file(ours), metrics_file(ref), NO_TOLERANCE).statistical()
    assert len(stats.outside) == 1 and stats.p_value > 0.9  # the count alone would pass
    assert stats.z_extreme == pytest.approx(3.76, abs=0.01) and [j.cell.key for j in stats.extreme] == [KEYS[7]]
    assert not stats.holds
    ours[7] = ref[7] + 3.5 * SE_DIFF  # far out for one cell, not for the largest of 299
    assert compare_metrics(metrics_file(ours), metrics_file(ref), NO_TOLERANCE).statistical().holds


@pytest.mark.parametrize(("outside", "holds"), [(0, True), (14, True), (21, True), (22, False), (40, False)])
def test_the_count_of_outside_cells_against_the_confidence_level(outside: int, holds: bool):
    ours, ref = with_outside(outside)
    stats = compare_metrics(ours, ref, NO_TOLERANCE).statistical()
    assert len(stats.outside) == outside and len(stats.judgements) == 299
    assert stats.expected == pytest.approx(299 * 0.05)
    assert stats.p_value == pytest.approx(binom.sf(outside - 1, 299, 0.05))  # P(X >= outside)
    assert stats.holds is holds
    assert stats.signs(stats.outside) == (math.ceil(outside / 2), outside // 2)


def test_alpha_moves_the_line():
    ours, ref = with_outside(22)  # p = 0.047
    assert not compare_metrics(ours, ref, NO_TOLERANCE).reproduced
    assert compare_metrics(ours, ref, NO_TOLERANCE, alpha=0.01).reproduced


def test_confidence_sets_the_expected_count():
    # 30 of 299 outside: twice what 95% intervals allow, what 90% intervals give
    ours, ref = with_outside(30)
    assert not compare_metrics(ours, ref, NO_TOLERANCE).reproduced
    at90 = compare_metrics(ours, ref, NO_TOLERANCE, confidence=0.9).statistical()
    assert at90.holds and at90.expected == pytest.approx(29.9) and len(at90.outside) == 30
    with pytest.raises(CompareError, match="--confidence"):
        compare_metrics(ours, ref, NO_TOLERANCE, confidence=1.0)


def test_two_independent_runs_fall_outside_one_interval_a_sixth_of_the_time_and_the_combined_test_at_5pct():
    """The reason the rule uses both intervals: their difference spreads sqrt(2) times wider than either run."""
    n = 4000
    keys = [(f"d{i}", "rd", "image_auroc") for i in range(n)]
    rng = np.random.default_rng(3)
    truth = rng.uniform(0.6, 0.9, n)
    ours = metrics_file(truth + rng.normal(0, SE, n), keys)
    ref_values = truth + rng.normal(0, SE, n)
    both = compare_metrics(ours, metrics_file(ref_values, keys), NO_TOLERANCE).statistical()
    assert {j.rule for j in both.judgements} == {BOTH}
    assert 0.04 < len(both.outside) / n < 0.06 and both.holds
    one = compare_metrics(ours, metrics_file(ref_values, keys, intervals=False), NO_TOLERANCE).statistical()
    assert {j.rule for j in one.judgements} == {OURS}
    assert 0.14 < len(one.outside) / n < 0.19 and not one.holds  # P(|Z| > 1.96 / sqrt 2) = 0.166


def test_missing_cells_fail_both_verdicts_and_extra_cells_are_listed_not_judged():
    metrics = metrics_file(reference_values())
    ours = json.loads(json.dumps(metrics))
    del ours["main/s03"]["rd"]["aupro"]
    comparison = compare_metrics(ours, metrics, NO_TOLERANCE)
    assert [c.key for c in comparison.missing()] == [("main/s03", "rd", "aupro")]
    assert not comparison.bitwise and not comparison.statistical().holds
    assert "1 reference numbers missing from yours" in format_comparison(comparison, "ref")
    extra = json.loads(json.dumps(metrics))
    extra["main/new"] = {"rd": {"image_auroc": 0.1, "image_auroc_ci_low": 0.0, "image_auroc_ci_high": 0.2}}
    comparison = compare_metrics(extra, metrics, NO_TOLERANCE)
    assert len(comparison.extra()) == 3 and comparison.bitwise and comparison.statistical().holds
    assert len(comparison.statistical().judgements) == 299
    assert "yours only (not judged)" in format_comparison(comparison, "ref")


# ---------------------------------------------------------------------------------------- cells one by one
def test_one_sided_intervals_fall_back_to_the_other_value_inside_it():
    key = ("main/s", "rd", "image_auroc")
    ours_only = judge(Cell(key, 0.70, 0.75, (0.65, 0.74), None), 0.95)
    assert ours_only.rule == OURS and ours_only.outside
    assert ours_only.z == pytest.approx(-0.05 / (0.09 / (2 * Z95)))
    assert not judge(Cell(key, 0.70, 0.73, (0.65, 0.74), None), 0.95).outside
    theirs_only = judge(Cell(key, 0.70, 0.75, None, (0.72, 0.78)), 0.95)
    assert theirs_only.rule == THEIRS and theirs_only.outside
    both = judge(Cell(key, 0.70, 0.75, (0.65, 0.74), (0.72, 0.78)), 0.95)
    assert both.rule == BOTH and not both.outside  # outside our interval, but not beyond the combined spread
    assert both.z == pytest.approx(-0.05 / math.hypot(0.09, 0.06) * 2 * Z95)
    degenerate = judge(Cell(key, 1.0, 0.99, (1.0, 1.0), None), 0.95)  # a zero-width interval
    assert degenerate.outside and degenerate.z == math.inf
    assert judge(Cell(key, 0.7, 0.7, None, None), 0.95) is None


def test_cells_without_any_interval_and_nan_on_one_side_must_agree():
    ref = {"main/s": {"rd": {"image_auroc": 0.8, "aupro": float("nan"), "pixel_auroc": 0.9}}}
    assert compare_metrics(ref, ref, NO_TOLERANCE).statistical().holds  # NaN against NaN agrees
    ours = {"main/s": {"rd": {"image_auroc": 0.8, "aupro": float("nan"), "pixel_auroc": 0.91}}}
    stats = compare_metrics(ours, ref, NO_TOLERANCE).statistical()
    assert [c.key[2] for c in stats.unjudgeable] == ["pixel_auroc"] and not stats.holds
    assert compare_metrics(ours, ref, parse_tolerances(["pixel_auroc=0.02"])).statistical().holds
    nan = {"main/s": {"rd": {"image_auroc": 0.8, "aupro": 0.5, "pixel_auroc": 0.9}}}
    stats = compare_metrics(nan, ref, parse_tolerances(["1"])).statistical()
    assert [c.key[2] for c in stats.unjudgeable] == ["aupro"] and not stats.holds  # beyond any tolerance


def test_derived_numbers_are_judged_only_bitwise():
    ref = metrics_file(reference_values())
    ref["fidelity"] = {"table3_image_auroc": {"spearman_rho": 0.5, "paper_inside_interval": 21.0, "cells": 42.0}}
    ours = json.loads(json.dumps(ref))
    ours["main/s00"]["rd"]["image_auroc_ci_low"] -= 1e-9  # an interval bound, a bit off
    ours["fidelity"]["table3_image_auroc"]["paper_inside_interval"] = 22.0  # a function of the intervals
    comparison = compare_metrics(ours, ref, NO_TOLERANCE)
    assert [c.key[2] for c in comparison.differing()] == ["paper_inside_interval", "image_auroc_ci_low"]
    assert not comparison.bitwise and comparison.statistical().holds
    ours["fidelity"]["table3_image_auroc"]["cells"] = 41.0  # a different table: no interval, must agree
    assert not compare_metrics(ours, ref, NO_TOLERANCE).statistical().holds


def test_bad_tolerances_and_files_are_named():
    with pytest.raises(CompareError, match="aupro=x"):
        parse_tolerances(["aupro=x"])
    with pytest.raises(CompareError, match="non-negative"):
        parse_tolerances(["-1"])
    with pytest.raises(CompareError, match=r"main/x\.rd\.auroc: expected a number"):
        compare_metrics({"main/x": {"rd": {"auroc": "high"}}}, {}, NO_TOLERANCE)


# ----------------------------------------------------------------------------------------- output and CLI
def test_the_report_says_which_rule_decided_and_lists_outside_cells_with_z_and_both_intervals():
    ours, ref = with_outside(22)
    text = format_comparison(compare_metrics(ours, ref, NO_TOLERANCE), "ref.json", confidence_source="test")
    assert text.splitlines()[:2] == [
        "reference: ref.json",
        "decided by: the statistical verdict (the default; --exact decides by the bitwise one)",
    ]
    assert "bitwise: NOT REPRODUCED" in text and "statistical: NOT REPRODUCED" in text
    assert "22 of 299 metric cells outside at 0.95 confidence" in text and "expected 14.95" in text
    assert "p = 0.0472" in text and "above the reference in 11, below in 11" in text
    first = text.split("largest |z| first:\n")[1].splitlines()[1]
    assert "2.50 " in first and first.count("[") == 2  # z, then your interval and the reference's
    assert text.endswith("\nNOT REPRODUCED")
    exact = format_comparison(compare_metrics(ours, ref, NO_TOLERANCE, exact=True), "ref.json")
    assert "decided by: the bitwise verdict (--exact)" in exact and "differ beyond the tolerance:" in exact
    same = metrics_file(reference_values())
    assert format_comparison(compare_metrics(same, same, NO_TOLERANCE), "r").endswith("REPRODUCED (statistically)")


def test_cli_exit_status_follows_the_deciding_verdict(tmp_path: Path, capsys):
    ours_metrics, ref_metrics = with_outside(14)
    reference = write(tmp_path / "reference.json", ref_metrics)
    ours = write(tmp_path / "results" / "metrics.json", ref_metrics)
    args = ["compare", "--metrics", str(ours), "--reference", str(reference), "--runs", str(tmp_path / "none")]
    args += ["--params", str(tmp_path / "no-params.yaml")]
    assert main(args) == 0 and main([*args, "--exact"]) == 0
    assert "897 identical" in capsys.readouterr().out
    write(ours, ours_metrics)  # 14 of 299 outside: the case
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "confidence from the default (no " in out and out.rstrip().endswith("REPRODUCED (statistically)")
    assert main([*args, "--exact"]) == 1
    assert main([*args, "--exact", "--tolerance", "1"]) == 0  # every number within 1
    write(ours, with_outside(40)[0])
    assert main(args) == 1 and main([*args, "--alpha", "1e-9"]) == 0
    assert main([*args, "--confidence", "1.5"]) == 2
    assert "--confidence 1.5" in capsys.readouterr().err


def test_cli_reads_the_confidence_from_params(tmp_path: Path, capsys):
    ours_metrics, ref_metrics = with_outside(30)
    data = tiny_params_dict()
    data["smoke"]["evaluate"]["confidence"] = 0.9
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(data), encoding="utf-8")
    ours, reference = write(tmp_path / "ours.json", ours_metrics), write(tmp_path / "ref.json", ref_metrics)
    args = ["compare", "--metrics", str(ours), "--reference", str(reference), "--runs", str(tmp_path / "none")]
    assert main([*args, "--params", str(params)]) == 0
    assert f"confidence from {params}: smoke.evaluate.confidence" in capsys.readouterr().out
    assert main([*args, "--params", str(params), "--confidence", "0.95"]) == 1


def test_cli_reads_a_git_revision_and_names_a_bad_one(tmp_path: Path, capsys):
    repo = tmp_path / "repo"
    ref = metrics_file(reference_values())
    ours = write(repo / "results" / "metrics.json", ref)
    for cmd in (["init", "-q"], ["add", "."], ["-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "ref"]):
        subprocess.run(["git", *cmd], cwd=repo, check=True)
    ref["main/s00"]["rd"]["recall_at_fpr"] += 1.0
    write(ours, ref)
    common = ["--runs", str(repo / "none"), "--params", str(repo / "none.yaml")]
    assert main(["compare", "--metrics", str(ours), *common]) == 1
    out = capsys.readouterr().out
    assert "at git revision HEAD" in out and "recall_at_fpr" in out
    assert main(["compare", "--metrics", str(ours), "--reference", "no-such-rev", *common]) == 2
    assert "no-such-rev" in capsys.readouterr().err
    assert main(["compare", "--metrics", str(tmp_path / "absent.json"), *common]) == 2
    assert "absent.json: no such metrics file" in capsys.readouterr().err


def test_the_findings_profile_is_compared_with_its_own_committed_run(tmp_path: Path, monkeypatch, capsys):
    """Under the findings profile the default reference is results/findings/metrics.json at HEAD (its run's own
    folder), not the smoke run's results/metrics.json; the digests default to results/findings/reference."""
    repo = tmp_path / "repo"
    smoke, findings = metrics_file(reference_values()), metrics_file(reference_values())
    findings["main/s00"]["rd"]["recall_at_fpr"] += 1.0
    write(repo / "results" / "metrics.json", smoke)
    write(repo / "results" / "findings" / "metrics.json", findings)
    for cmd in (["init", "-q"], ["add", "."], ["-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "ref"]):
        subprocess.run(["git", *cmd], cwd=repo, check=True)
    ours = write(repo / "results" / "metrics.json", findings)  # a findings run's numbers in the workspace
    monkeypatch.chdir(repo)
    common = ["compare", "--exact", "--runs", "none", "--params", "none.yaml"]
    assert main([*common, "--profile", "findings"]) == 0
    assert "results/findings/metrics.json at git revision HEAD" in capsys.readouterr().out
    assert main([*common, "--profile", "smoke"]) == 1  # the committed smoke numbers differ
    assert main([*common, "--profile", "findings", "--reference", str(ours)]) == 0  # an explicit reference wins
    assert committed_paths(Path("none.yaml"), "findings", Path("x.json")) == (
        Path("results/findings/metrics.json"),
        Path("results/findings/reference"),
    )
    assert committed_paths(Path("none.yaml"), "paper", Path("x.json")) == (Path("x.json"), Path("results/reference"))
