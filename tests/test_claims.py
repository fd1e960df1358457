"""The paper's findings as rules: each rule holds on the paper's own numbers, is contradicted and left undecided on
synthetic metrics built for it; paired against unpaired replicates; `miad claims` end to end."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from miad.claims import decide as decide_module
from miad.claims.decide import decide, decide_all
from miad.claims.evidence import Cell, Evidence, EvidenceError, load_evidence
from miad.claims.findings import FINDINGS
from miad.claims.output import claims_section, to_csv, write_claims
from miad.claims.rules import CONTRADICTED, HOLDS, UNDECIDED, Bound, bonferroni, combine, compare, no_data
from miad.cli import main
from miad.reporting.compare import flatten
from miad.reporting.tables import paper_results

RESAMPLES = 400
EI, WM = "electrical_insulator", "witness_mark"
BY_ID = {f.id: f for f in FINDINGS}
Values = dict[tuple[str, str, str], float]


def paper_values() -> Values:
    """{(dataset, method, metric): value} of the paper's Tables 3-7."""
    paper, out = paper_results(), {}
    for scenario, row in paper["table3"].items():
        if scenario == "mean":
            continue
        for method, (auroc, recall) in row.items():
            out[(f"main/{scenario}", method, "image_auroc")] = auroc
            out[(f"main/{scenario}", method, "recall_at_fpr")] = recall
            out[(f"main/{scenario}", method, "aupro")] = paper["table4"][scenario][method]
    for table, scenario in (("table5", EI), ("table6", WM)):
        for variant, row in paper[table].items():
            for method, (auroc, recall) in row.items():
                if method != "mean":
                    out[(f"{variant}/{scenario}", method, "image_auroc")] = auroc
                    out[(f"{variant}/{scenario}", method, "recall_at_fpr")] = recall
    for fraction, row in paper["table7"].items():
        for method, pair in row.items():
            for position, scenario in enumerate((EI, WM)):
                if pair is not None:
                    out[(f"table7/{float(fraction):g}/main/{scenario}", method, "image_auroc")] = pair[position]
    return out


def split_of(dataset: str) -> str:
    """The test split a cell is evaluated on: Table 7's prefixes all on the main split."""
    return "main/" + dataset.split("/")[-1] if dataset.startswith("table7/") else dataset


def world(values: Values, spread: float, seed: int = 0) -> Evidence:
    """Cells whose replicates are value + spread x (a noise shared by every cell of one test split (paired) + a
    tenth of the cell's own)."""
    rng = np.random.default_rng(seed)
    noise = {split: rng.standard_normal(RESAMPLES) for split in sorted({split_of(d) for d, _, _ in values})}
    cells = {}
    for key, value in sorted(values.items()):
        replicates = value + spread * (noise[split_of(key[0])] + 0.1 * rng.standard_normal(RESAMPLES))
        cells[key] = Cell(value, replicates, f"split:{split_of(key[0])}", "runs")
    return Evidence(cells, profile="test", train_images=10000)


def verdict_of(finding_id: str, evidence: Evidence, confidence: float = 0.95):
    return decide(evidence, confidence, [BY_ID[finding_id]])[0]


# ------------------------------------------------------------------------------------------------ the paper
EXPECTED_ON_PAPER = {f.id: HOLDS for f in FINDINGS} | {
    "4.4-patchcore-fastflow-plateau": UNDECIDED,  # the paper has no PatchCore cell beyond 2000 images
    "4.4-patchcore-beyond-2000": UNDECIDED,  # nor any PatchCore run beyond 2000 images
}


def test_every_rule_reads_the_paper_as_its_authors_did():
    """Each reading of a vague word is chosen so the finding holds on the paper's own tables."""
    verdicts = decide(world(paper_values(), 1e-4), 0.95)
    assert {v.finding: v.verdict for v in verdicts} == EXPECTED_ON_PAPER, [(v.finding, v.detail) for v in verdicts]
    plateau = next(v for v in verdicts if v.finding == "4.4-patchcore-fastflow-plateau")
    assert "no data" in plateau.detail and "patchcore" in plateau.detail


def with_uncapped(values: Values, gain: float) -> Values:
    """PatchCore without the cap beyond the 20% prefix: its 20% AUROC + gain."""
    out = dict(values)
    for scenario in (EI, WM):
        base = values[(f"table7/0.2/main/{scenario}", "patchcore", "image_auroc")]
        for fraction in ("0.4", "0.8", "1"):
            out[(f"table7/{fraction}/main/{scenario}", "patchcore_uncapped", "image_auroc")] = base + gain
    return out


def _set(values: Values, datasets, methods, metric: str, value: float | Callable[[float], float]) -> Values:
    out = dict(values)
    for dataset in datasets:
        for method in methods:
            key = (dataset, method, metric)
            out[key] = value(out[key]) if callable(value) else value
    return out


FOUR = ("rd", "patchcore", "fastflow", "draem")
SIX = (*FOUR, "ae", "uniad")
MAINS = [f"main/{s}" for s in paper_results()["table3"] if s != "mean"]
SURFACE_MAINS = [f"main/{s}" for s in ("electrical_insulator", "metal_welding", "photovoltaic_module", "wind_turbine")]
LOGICAL_MAINS = [f"main/{s}" for s in ("catenary_dropper", "nut_and_bolt", "witness_mark")]


def _factors_raise(v: Values) -> Values:
    for scenario in (EI, WM):
        for factor in ("uv", "ub", "us"):
            for m in FOUR:
                v = _set(v, [f"{factor}/{scenario}"], [m], "image_auroc", v[(f"baseline/{scenario}", m, "image_auroc")])
                v[(f"{factor}/{scenario}", m, "image_auroc")] += 0.05
    return v


def _monotone(first: str, second: str) -> Callable[[Values], Values]:
    """`second` ordered exactly as `first` in every scenario (no ties): the two metrics never disagree."""

    def change(v: Values) -> Values:
        v = dict(v)
        for dataset in MAINS:
            for i, m in enumerate(SIX):
                v[(dataset, m, first)] = round(v[(dataset, m, first)], 2) + 0.001 * i
                v[(dataset, m, second)] = v[(dataset, m, first)]
        return v

    return change


def _table7(method: str, fraction: str, value: float) -> Callable[[Values], Values]:
    return lambda v: _set(v, [f"table7/{fraction}/main/{s}" for s in (EI, WM)], [method], "image_auroc", value)


# finding -> a change of the paper's numbers that turns its verdict into `contradicted`
CONTRADICT: dict[str, Callable[[Values], Values]] = {
    "4.3-factors-lower-auroc": _factors_raise,
    "4.3-patchcore-witness-exception": lambda v: _set(v, [f"uv/{WM}"], ["patchcore"], "image_auroc", 0.5),
    "4.3-equal-impact": lambda v: _set(v, [f"us/{EI}"], FOUR, "image_auroc", lambda x: x - 0.6),
    "4.3-us-dominates-recall": lambda v: _set(
        _set(v, [f"us/{EI}"], FOUR, "recall_at_fpr", 0.6), [f"uv/{EI}", f"ub/{EI}"], FOUR, "recall_at_fpr", 0.0
    ),
    "4.3-combination-worst": lambda v: _set(v, [f"main/{EI}"], FOUR, "image_auroc", 1.0),
    "fig1-witness-baseline": lambda v: _set(v, [f"baseline/{WM}"], FOUR, "image_auroc", 0.6),
    "4.2-no-clear-winner": lambda v: _set(v, MAINS, ["draem"], "image_auroc", 1.0),
    "4.2-draem-best-mean": lambda v: _set(v, MAINS, ["rd"], "image_auroc", 0.99),
    "4.2-draem-surface-rd-logical": lambda v: _set(v, LOGICAL_MAINS, ["draem"], "image_auroc", 0.99),
    "4.2-auroc-recall-disagree": _monotone("image_auroc", "recall_at_fpr"),
    "4.2-aupro-not-auroc": _monotone("aupro", "image_auroc"),
    "4.2-ae-uniad-weakest": lambda v: _set(v, MAINS, ["ae"], "image_auroc", 0.99),
    "4.4-rd-grows": _table7("rd", "1", 0.3),
    "4.4-patchcore-fastflow-plateau": lambda v: _table7("fastflow", "1", 0.9)(with_uncapped(v, 0.0)),
    "4.4-draem-insulator-gains-witness-fails": _table7("draem", "1", 0.6),
}
HOLD_EXTRA: dict[str, Callable[[Values], Values]] = {
    "4.4-patchcore-fastflow-plateau": lambda v: with_uncapped(v, 0.01),  # the paper lacks PatchCore beyond 2000
}
PLAN_RULES = [f.id for f in FINDINGS if f.rule != "runs_beyond"]


@pytest.mark.parametrize("finding", PLAN_RULES)
def test_rule_holds(finding):
    values = HOLD_EXTRA.get(finding, lambda v: v)(paper_values())
    verdict = verdict_of(finding, world(values, 1e-3))
    assert verdict.verdict == HOLDS, verdict.detail
    assert verdict.effect is not None and verdict.interval is not None


@pytest.mark.parametrize("finding", PLAN_RULES)
def test_rule_contradicted(finding):
    verdict = verdict_of(finding, world(CONTRADICT[finding](paper_values()), 1e-3))
    assert verdict.verdict == CONTRADICTED, (verdict.detail, [(p.label, p.verdict, p.effect) for p in verdict.leaves()])


@pytest.mark.parametrize("finding", PLAN_RULES)
def test_rule_undecided_when_noise_swamps_the_effect(finding):
    values = HOLD_EXTRA.get(finding, lambda v: v)(paper_values())
    verdict = verdict_of(finding, world(values, 3.0))
    assert verdict.verdict == UNDECIDED, verdict.detail


@pytest.mark.parametrize("finding", [f.id for f in FINDINGS])
def test_missing_cells_leave_a_finding_undecided_never_crash(finding):
    values = {
        k: v for k, v in paper_values().items() if not k[0].startswith(("table7/", "baseline/")) and k[1] != "uniad"
    }
    for evidence in (world(values, 1e-3), Evidence({})):
        verdict = verdict_of(finding, evidence)
        assert verdict.verdict in (HOLDS, CONTRADICTED, UNDECIDED)
    assert verdict_of(finding, Evidence({})).verdict == UNDECIDED
    assert "no data" in verdict_of(finding, Evidence({})).detail


def test_patchcore_beyond_2000_images():
    values = with_uncapped(paper_values(), 0.0)
    finding = "4.4-patchcore-beyond-2000"
    assert verdict_of(finding, world(values, 1e-3)).verdict == HOLDS  # 0.4 x 10000 images
    small = world(values, 1e-3)
    small.train_images = 400  # 1.0 x 400 images: says nothing about memory at 2000
    assert verdict_of(finding, small).verdict == UNDECIDED and "too few" in verdict_of(finding, small).detail
    failed = {k: (float("nan") if k[1] == "patchcore_uncapped" else v) for k, v in values.items()}
    assert verdict_of(finding, world(failed, 1e-3)).verdict == CONTRADICTED
    unknown = world(values, 1e-3)
    unknown.train_images = None
    assert verdict_of(finding, unknown).verdict == UNDECIDED


# ------------------------------------------------------------------------------------------------ rules
def test_bound_sides_and_bonferroni():
    assert Bound(above=0.0).side(0.01, 0.2) == HOLDS
    assert Bound(above=0.0).side(-0.2, 0.0) == CONTRADICTED
    assert Bound(above=0.0).side(-0.1, 0.1) == UNDECIDED
    band = Bound(above=-0.1, below=0.1)
    assert band.side(-0.05, 0.05) == HOLDS and band.side(0.1, 0.3) == CONTRADICTED and band.side(0.0, 0.2) == UNDECIDED
    assert bonferroni(0.95, 5) == pytest.approx(0.99)
    with pytest.raises(ValueError):
        Bound()


def _part(verdict: str) -> object:
    reps = {HOLDS: np.full(10, 1.0), CONTRADICTED: np.full(10, -1.0), UNDECIDED: np.linspace(-1, 1, 10)}[verdict]
    return compare("p", float(reps.mean()), reps, Bound(above=0.0), 0.95)


@pytest.mark.parametrize(
    ("how", "parts", "expected"),
    [
        ("all", [HOLDS, HOLDS], HOLDS),
        ("all", [HOLDS, UNDECIDED], UNDECIDED),
        ("all", [HOLDS, CONTRADICTED], CONTRADICTED),
        ("majority", [HOLDS, HOLDS, UNDECIDED], HOLDS),
        ("majority", [HOLDS, UNDECIDED, UNDECIDED], UNDECIDED),
        ("majority", [HOLDS, CONTRADICTED, CONTRADICTED], CONTRADICTED),
        ("majority", [HOLDS, HOLDS, CONTRADICTED, CONTRADICTED], CONTRADICTED),  # 2 of 4 is not more than half
        ("any", [CONTRADICTED, HOLDS], HOLDS),
        ("any", [CONTRADICTED, UNDECIDED], UNDECIDED),
        ("any", [CONTRADICTED, CONTRADICTED], CONTRADICTED),
    ],
)
def test_combinations_count_parts(how, parts, expected):
    assert combine("c", how, [_part(p) for p in parts]).verdict == expected


def test_no_data_parts_are_named():
    verdict = combine("c", "all", [_part(HOLDS), no_data("gone", "x")])
    assert verdict.verdict == UNDECIDED and "no data for 1: gone" in verdict.detail
    assert combine("c", "all", [no_data("a"), no_data("b")]).detail.startswith("no data")


# ------------------------------------------------------------------------------------------------ pairing
def test_paired_replicates_give_a_narrower_interval_and_decide():
    """Two methods on one split share resamples: their difference cancels the common noise."""
    rng = np.random.default_rng(1)
    common = rng.standard_normal(2000) * 0.1
    a, b = 0.80 + common + 0.005 * rng.standard_normal(2000), 0.75 + common + 0.005 * rng.standard_normal(2000)
    key_a, key_b = ("main/x", "a", "image_auroc"), ("main/x", "b", "image_auroc")
    paired = Evidence({key_a: Cell(0.80, a, "split:x", "runs"), key_b: Cell(0.75, b, "split:x", "runs")})
    unpaired = Evidence({key_a: Cell(0.80, a, "split:x", "runs"), key_b: Cell(0.75, b, "split:y", "runs")})
    terms = ((1.0, key_a), (-1.0, key_b))
    effects = [e.effect(terms) for e in (paired, unpaired)]
    widths = [np.subtract(*np.quantile(e.replicates, [0.975, 0.025])) for e in effects]
    assert widths[0] < widths[1] / 5
    assert "paired" in effects[0].note and "unpaired" in effects[1].note
    verdicts = [compare("d", e.point, e.replicates, Bound(above=0.0), 0.95) for e in effects]
    assert [v.verdict for v in verdicts] == [HOLDS, UNDECIDED]


def _run(variant: str, scores: np.ndarray, labels: np.ndarray, seed: int, plan: str | None) -> dict:
    from miad import bootstrap

    boot = bootstrap.Bootstrap.draw(labels, RESAMPLES, seed)
    reps = {"image_auroc": bootstrap.auroc_replicates(scores, labels, boot)}
    run = {
        "method": "rd",
        "variant": variant,
        "scenario": WM,
        "profile": "smoke",
        "metrics": {"image_auroc": float(reps["image_auroc"].mean())},
        "bootstrap": {
            "confidence": 0.95,
            "resamples": RESAMPLES,
            "seed": seed,
            "replicates": {k: v.tolist() for k, v in reps.items()},
        },
        "images": [
            {"stem": f"i{i}", "label": int(y), "score": float(s)}
            for i, (s, y) in enumerate(zip(scores, labels, strict=True))
        ],
    }
    if plan:
        run["image_plan"] = plan
    return run


@pytest.mark.parametrize("plan", [None, "wm-plan"])
def test_runs_that_share_an_image_plan_are_resampled_jointly(tmp_path, plan):
    """Counterfactual variants (one image plan) pair across variants; without the declaration they stay unpaired."""
    rng = np.random.default_rng(3)
    labels = np.r_[np.zeros(30, int), np.ones(30, int)]
    base = rng.standard_normal(60) + 1.2 * labels
    shifted = base - 0.15 * labels + 0.05 * rng.standard_normal(60)  # +UV: the same images, a little harder
    metrics = {}
    for variant, scores, seed in (("baseline", base, 11), ("uv", shifted, 22)):
        run = _run(variant, scores, labels, seed, plan)
        path = tmp_path / "runs" / "rd" / variant / f"{WM}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(run))
        metrics[f"{variant}/{WM}"] = {"rd": {"image_auroc": run["metrics"]["image_auroc"]}}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    evidence = load_evidence(tmp_path / "metrics.json", tmp_path / "runs", tmp_path / "none")
    cells = [evidence.get(f"{v}/{WM}", "rd", "image_auroc") for v in ("baseline", "uv")]
    effect = evidence.effect(
        ((1.0, (f"baseline/{WM}", "rd", "image_auroc")), (-1.0, (f"uv/{WM}", "rd", "image_auroc")))
    )
    width = float(np.subtract(*np.quantile(effect.replicates, [0.975, 0.025])))
    if plan:
        assert cells[0].group == cells[1].group == "plan:wm-plan/joint" and effect.note.startswith("paired")
        assert width < 0.1
    else:
        assert cells[0].group != cells[1].group and effect.note.startswith("unpaired")
        assert width > 0.1


# ------------------------------------------------------------------------------------------------ files and CLI
def write_results(root: Path, values: Values, spread: float = 0.02) -> None:
    """A results folder: metrics.json with intervals, and run files with replicates for the main splits."""
    rng = np.random.default_rng(5)
    metrics: dict = {"fidelity": {"table3_image_auroc": {"cells": 42.0}}}
    runs: dict = {}
    for (dataset, method, metric), value in values.items():
        row = metrics.setdefault(dataset, {}).setdefault(method, {})
        row.update({metric: value, f"{metric}_ci_low": value - spread, f"{metric}_ci_high": value + spread})
        if dataset.startswith("main/"):
            runs.setdefault((dataset, method), {})[metric] = value
    noise = {d: rng.standard_normal(RESAMPLES) * spread / 2 for d, _ in runs}
    for (dataset, method), cell in runs.items():
        variant, scenario = dataset.split("/")
        run = {
            "method": method,
            "variant": variant,
            "scenario": scenario,
            "profile": "smoke",
            "metrics": cell,
            "bootstrap": {
                "confidence": 0.95,
                "seed": hash(dataset) % 1000,
                "resamples": RESAMPLES,
                "replicates": {k: (v + noise[dataset]).tolist() for k, v in cell.items()},
            },
            "images": [],
        }
        path = root / "runs" / method / variant / f"{scenario}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(run))
    (root / "metrics.json").write_text(json.dumps(metrics))


def test_cli_decides_a_results_folder(tmp_path, capsys):
    write_results(tmp_path, with_uncapped(paper_values(), 0.01))
    out = tmp_path / "tables"
    args = ["claims", "--metrics", str(tmp_path / "metrics.json"), "--runs", str(tmp_path / "runs")]
    args += ["--size-runs", str(tmp_path / "runs_size"), "--out", str(out), "--train-images", "10000"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f"of {len(FINDINGS)} findings hold" in printed and "| 4.3-equal-impact |" in printed
    assert (out / "claims.md").is_file() and (out / "claims.csv").is_file()
    rows = (out / "claims.csv").read_text().splitlines()
    assert rows[0].startswith("finding,part,section,verdict") and len(rows) > len(FINDINGS)
    assert "unpaired" in (out / "claims.csv").read_text() and "paired: one set" in (out / "claims.csv").read_text()
    verdicts = decide_all(tmp_path / "metrics.json", tmp_path / "runs", None, 0.9, train_images=10000)
    assert [v.finding for v in verdicts] == [f.id for f in FINDINGS]


BAD_INPUT = [
    (None, "not found"),
    ("{oops", "cannot be read as JSON"),
    ("[1]", "a JSON object"),
    ('{"main/x": 3}', "mapping of methods"),
]


@pytest.mark.parametrize(("content", "message"), BAD_INPUT)
def test_bad_input_names_the_file(tmp_path, capsys, content, message):
    path = tmp_path / "metrics.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(EvidenceError, match=message):
        load_evidence(path)
    assert main(["claims", "--metrics", str(path), "--out", str(tmp_path / "t")]) == 2
    assert str(path) in capsys.readouterr().err


def test_metrics_section_is_numbers_that_compare_reads():
    verdicts = decide(world(paper_values(), 1e-3), 0.95)
    section = claims_section(verdicts)
    cells = flatten({"claims": section}, "metrics.json")
    assert cells[("claims", "4.3-equal-impact", "verdict")] == 1.0
    assert section["summary"]["findings"] == len(FINDINGS)
    assert section["summary"]["holds"] + section["summary"]["undecided"] == len(FINDINGS)
    assert to_csv(verdicts).count("\n") > len(FINDINGS)


def test_every_finding_is_complete():
    for finding in FINDINGS:
        assert finding.quote and finding.note and finding.statement and finding.scope
        assert finding.rule in decide_module.RULES, finding.id
        assert finding.section in ("4.2", "4.3", "4.4", "Figure 1")
    assert len(FINDINGS) >= 15


REAL = Path("/work/main/results")


@pytest.mark.skipif(not (REAL / "metrics.json").is_file(), reason="no committed results to read")
def test_committed_results_get_a_verdict_for_every_finding(tmp_path):
    verdicts = decide_all(REAL / "metrics.json", REAL / "runs", REAL / "runs_size", train_images=40)
    assert [v.finding for v in verdicts] == [f.id for f in FINDINGS]
    assert all(v.verdict in (HOLDS, CONTRADICTED, UNDECIDED) for v in verdicts)
    md, table = write_claims(verdicts, tmp_path)
    assert md.read_text().count("### ") == len(FINDINGS) and table.is_file()


def test_docs_page_is_generated_from_the_findings():
    from miad.claims.output import docs_page
    from tests.conftest import REPO

    assert (REPO / "docs" / "claims.md").read_text(encoding="utf-8") == docs_page()
