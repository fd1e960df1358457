"""`miad compare`: cells judged against a tolerance, missing cells named, a git revision as the reference."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from miad.cli import main
from miad.reporting.compare import CompareError, compare_metrics, format_comparison, parse_tolerances

REFERENCE = {
    "main/electrical_insulator": {
        "rd": {"image_auroc": 0.8, "aupro": 0.5, "recall_at_fpr": 0.1},
        "patchcore": {"image_auroc": 1.0, "aupro": float("nan"), "recall_at_fpr": 1.0},
    },
    "table7/0.5/main/electrical_insulator": {"rd": {"image_auroc": 0.7}},
}


def changed(**cells: float) -> dict:
    """A copy of REFERENCE with cells replaced: key 'dataset|method|metric'."""
    metrics = json.loads(json.dumps(REFERENCE))
    for key, value in cells.items():
        dataset, method, metric = key.split("|")
        metrics.setdefault(dataset, {}).setdefault(method, {})[metric] = value
    return metrics


def write(path: Path, metrics: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics), encoding="utf-8")
    return path


def test_identical_metrics_reproduce():
    comparison = compare_metrics(REFERENCE, REFERENCE, parse_tolerances(None))
    assert comparison.reproduced
    assert comparison.identical() == len(comparison.cells) == 7  # NaN against NaN counts as identical


def test_a_cell_beyond_tolerance_is_named_and_one_within_is_not():
    ours = changed(
        **{"main/electrical_insulator|rd|image_auroc": 0.8 + 5e-7, "main/electrical_insulator|rd|aupro": 0.6}
    )
    comparison = compare_metrics(ours, REFERENCE, parse_tolerances(None))
    assert [cell.key for cell in comparison.beyond()] == [("main/electrical_insulator", "rd", "aupro")]
    assert not comparison.reproduced
    assert compare_metrics(ours, REFERENCE, parse_tolerances(["aupro=0.2"])).reproduced


def test_nan_on_one_side_only_is_beyond_any_tolerance():
    ours = changed(**{"main/electrical_insulator|patchcore|aupro": 0.9})
    assert not compare_metrics(ours, REFERENCE, parse_tolerances(["1"])).reproduced


def test_missing_cells_fail_and_extra_cells_do_not():
    ours = json.loads(json.dumps(REFERENCE))
    del ours["table7/0.5/main/electrical_insulator"]
    comparison = compare_metrics(ours, REFERENCE, parse_tolerances(None))
    assert [c.key[0] for c in comparison.missing()] == ["table7/0.5/main/electrical_insulator"]
    assert not comparison.reproduced
    extra = changed(**{"main/witness_mark|rd|image_auroc": 0.5})
    assert compare_metrics(extra, REFERENCE, parse_tolerances(None)).reproduced


def test_bad_tolerances_and_files_are_named(tmp_path: Path):
    with pytest.raises(CompareError, match="aupro=x"):
        parse_tolerances(["aupro=x"])
    with pytest.raises(CompareError, match="non-negative"):
        parse_tolerances(["-1"])
    with pytest.raises(CompareError, match=r"main/x\.rd\.auroc: expected a number"):
        compare_metrics({"main/x": {"rd": {"auroc": "high"}}}, REFERENCE, parse_tolerances(None))


def test_cli_exit_status_and_report(tmp_path: Path, capsys):
    reference = write(tmp_path / "reference.json", REFERENCE)
    ours = write(tmp_path / "results" / "metrics.json", REFERENCE)
    args = ["compare", "--metrics", str(ours), "--reference", str(reference), "--runs", str(tmp_path / "none")]
    assert main(args) == 0
    assert "7 identical" in capsys.readouterr().out
    write(ours, changed(**{"main/electrical_insulator|rd|image_auroc": 0.75}))
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "beyond tolerance" in out and "NOT REPRODUCED" in out
    assert "main/electrical_insulator" in out and "-5.00e-02" in out
    assert main([*args, "--tolerance", "image_auroc=0.1"]) == 0


def test_cli_reads_a_git_revision_and_names_a_bad_one(tmp_path: Path, capsys):
    repo = tmp_path / "repo"
    ours = write(repo / "results" / "metrics.json", REFERENCE)
    for cmd in (["init", "-q"], ["add", "."], ["-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "ref"]):
        subprocess.run(["git", *cmd], cwd=repo, check=True)
    write(ours, changed(**{"main/electrical_insulator|rd|recall_at_fpr": 0.2}))
    assert main(["compare", "--metrics", str(ours), "--runs", str(repo / "none")]) == 1
    out = capsys.readouterr().out
    assert "at git revision HEAD" in out and "recall_at_fpr" in out
    assert main(["compare", "--metrics", str(ours), "--reference", "no-such-rev"]) == 2
    assert "no-such-rev" in capsys.readouterr().err
    assert main(["compare", "--metrics", str(tmp_path / "absent.json")]) == 2
    assert "absent.json: no such metrics file" in capsys.readouterr().err


def with_interval(value: float, low: float, high: float) -> dict:
    """REFERENCE's rd AUROC cell replaced by `value` and its interval."""
    metrics = changed(**{"main/electrical_insulator|rd|image_auroc": value})
    metrics["main/electrical_insulator"]["rd"].update(image_auroc_ci_low=low, image_auroc_ci_high=high)
    return metrics


def test_a_reference_inside_our_interval_counts_as_reproduced():
    ours = with_interval(0.75, 0.6, 0.9)  # the reference's 0.8 lies inside
    comparison = compare_metrics(ours, REFERENCE, parse_tolerances(None))
    assert comparison.reproduced and comparison.beyond() != []  # the value differs, the interval holds it
    assert [c.key[2] for c in comparison.with_interval()] == ["image_auroc"]
    assert "1 of 1 reference values lie inside your intervals" in format_comparison(comparison, "ref")
    exact = compare_metrics(ours, REFERENCE, parse_tolerances(None), exact=True)
    assert not exact.reproduced  # exact mode: 0.75 is not 0.8, whatever the interval
    outside = compare_metrics(with_interval(0.5, 0.4, 0.7), REFERENCE, parse_tolerances(None))
    assert not outside.reproduced and [c.key for c in outside.outside()] == [
        ("main/electrical_insulator", "rd", "image_auroc")
    ]
    text = format_comparison(outside, "ref")
    assert "0 of 1 reference values lie inside" in text and "[0.4000, 0.7000]" in text
    assert text.endswith("NOT REPRODUCED")


def test_cli_exact_flag(tmp_path: Path, capsys):
    ours = write(tmp_path / "ours.json", with_interval(0.75, 0.6, 0.9))
    reference = write(tmp_path / "ref.json", REFERENCE)
    assert main(["compare", "--metrics", str(ours), "--reference", str(reference)]) == 0
    assert main(["compare", "--metrics", str(ours), "--reference", str(reference), "--exact"]) == 1
    assert "interval bounds included" in capsys.readouterr().out
