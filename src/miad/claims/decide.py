"""Every finding decided from the evidence: each rule names the comparisons (parts) its finding makes, and one
evaluator decides them at the Bonferroni-adjusted confidence and combines them (miad.claims.rules).

A rule returns a `Plan`: a tree of parts (`Leaf`: a linear combination of cells against a bound) joined by `Node`s
(all | majority | any), and the headline effect reported for the finding (by default the mean of its parts).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from miad.claims.evidence import CellKey, Evidence, load_evidence
from miad.claims.findings import FINDINGS, Finding
from miad.claims.rules import (
    CONTRADICTED,
    HOLDS,
    UNDECIDED,
    Bound,
    Verdict,
    bonferroni,
    combine,
    compare,
    no_data,
    summary_line,
)

AUROC, RECALL = "image_auroc", "recall_at_fpr"
Terms = tuple[tuple[float, CellKey], ...]


@dataclass(frozen=True)
class Leaf:
    """One comparison: sum(weight * cell) against `bound`."""

    label: str
    terms: Terms
    bound: Bound


@dataclass(frozen=True)
class Node:
    """Parts combined: all | majority | any."""

    label: str
    how: str
    children: tuple[Leaf | Node, ...]


@dataclass(frozen=True)
class Plan:
    tree: Node
    headline: Terms | None = None  # the finding's effect; None: the mean of the parts
    headline_label: str = "mean over the parts"


def _leaves(node: Leaf | Node) -> list[Leaf]:
    return [node] if isinstance(node, Leaf) else [leaf for child in node.children for leaf in _leaves(child)]


def _missing(evidence: Evidence, terms: Terms) -> str:
    return ", ".join(f"{d} {m} {x}" for _, (d, m, x) in terms if evidence.get(d, m, x) is None)


def _decide_leaf(evidence: Evidence, leaf: Leaf, confidence: float) -> Verdict:
    effect = evidence.effect(leaf.terms)
    if effect is None:
        return no_data(leaf.label, _missing(evidence, leaf.terms))
    if effect.replicates is None:
        return Verdict(UNDECIDED, effect.point, None, f"no interval ({effect.note})", leaf.label)
    return compare(leaf.label, effect.point, effect.replicates, leaf.bound, confidence, effect.note)


def _decide_node(evidence: Evidence, node: Leaf | Node, confidence: float) -> Verdict:
    if isinstance(node, Leaf):
        return _decide_leaf(evidence, node, confidence)
    return combine(node.label, node.how, [_decide_node(evidence, child, confidence) for child in node.children])


def evaluate(plan: Plan, evidence: Evidence, confidence: float) -> Verdict:
    """The plan's parts at the Bonferroni-adjusted confidence, combined; its headline effect at `confidence`."""
    leaves = _leaves(plan.tree)
    part_confidence = bonferroni(confidence, len(leaves))
    parts = [_decide_node(evidence, child, part_confidence) for child in plan.tree.children]
    headline = plan.headline
    if headline is None:
        present = [leaf for leaf in leaves if evidence.effect(leaf.terms) is not None]
        headline = tuple((w / len(present), key) for leaf in present for w, key in leaf.terms) if present else None
    summary = None
    if headline:
        effect = evidence.effect(headline)
        if effect is not None and effect.replicates is not None:
            summary = compare("", effect.point, effect.replicates, Bound(above=0.0), confidence)
        elif effect is not None:
            summary = Verdict(UNDECIDED, effect.point, None, "", "")
    verdict = combine(plan.tree.label, plan.tree.how, parts, effect=summary)
    detail = verdict.detail
    if len(leaves) > 1:
        detail += f"; parts at {part_confidence:.4f} (Bonferroni, {len(leaves)} parts)"
    if summary is not None:
        detail += f"; effect: {plan.headline_label}"
    return replace(verdict, detail=detail)


# ------------------------------------------------------------------------------------------------ cell helpers
def _cell(dataset: str, method: str, metric: str = AUROC) -> CellKey:
    return (dataset, method, metric)


def _mean(datasets: Sequence[str], methods: Sequence[str], metric: str = AUROC, weight: float = 1.0) -> Terms:
    """weight x the mean of `metric` over every (dataset, method)."""
    pairs = list(itertools.product(datasets, methods))
    return tuple((weight / len(pairs), _cell(d, m, metric)) for d, m in pairs)


def _point(evidence: Evidence, terms: Terms) -> float | None:
    effect = evidence.effect(terms)
    return None if effect is None else effect.point


def _argmax(evidence: Evidence, dataset: str, methods: Sequence[str], metric: str) -> str | None:
    """The method with the highest point value (first in `methods` order on ties), None without cells."""
    values = [(cell.value, -i, m) for i, m in enumerate(methods) if (cell := evidence.get(dataset, m, metric))]
    values = [v for v in values if np.isfinite(v[0])]
    return max(values)[2] if values else None


Rule = Callable[[Finding, Evidence, float], Verdict]
RULES: dict[str, Rule] = {}


def rule(name: str) -> Callable[[Callable[[Finding, Evidence], Plan]], Callable[[Finding, Evidence], Plan]]:
    """Register a plan-building rule under `name` (the evaluator decides its plan)."""

    def register(build: Callable[[Finding, Evidence], Plan]) -> Callable[[Finding, Evidence], Plan]:
        RULES[name] = lambda finding, evidence, confidence: evaluate(build(finding, evidence), evidence, confidence)
        return build

    return register


# ------------------------------------------------------------------------------------------------ 4.3
@rule("factor_drop")
def factor_drop(finding: Finding, evidence: Evidence) -> Plan:
    p = finding.params
    groups = []
    for scenario, factor in itertools.product(p["scenarios"], p["factors"]):
        methods = [m for m in p["methods"] if (scenario, m) not in p["excepted"]]
        leaves = tuple(
            Leaf(
                f"{scenario} +{factor.upper()} {m}",
                ((1.0, _cell(f"baseline/{scenario}", m)), (-1.0, _cell(f"{factor}/{scenario}", m))),
                Bound(above=0.0),
            )
            for m in methods
        )
        groups.append(Node(f"{scenario} +{factor.upper()}", "majority", leaves))
    return Plan(Node(finding.id, "all", tuple(groups)), headline_label="mean AUROC drop over the parts")


@rule("factor_no_drop")
def factor_no_drop(finding: Finding, evidence: Evidence) -> Plan:
    p = finding.params
    scenario, method = p["scenario"], p["method"]
    leaves = tuple(
        Leaf(
            f"{scenario} +{factor.upper()} {method}",
            ((1.0, _cell(f"baseline/{scenario}", method)), (-1.0, _cell(f"{factor}/{scenario}", method))),
            Bound(below=p["margin"]),
        )
        for factor in p["factors"]
    )
    return Plan(Node(finding.id, "all", leaves), headline_label="mean AUROC drop over the factors")


@rule("equal_impact")
def equal_impact(finding: Finding, evidence: Evidence) -> Plan:
    p, margin = finding.params, finding.params["margin"]
    leaves, widest, widest_label = [], None, ""
    for scenario in p["scenarios"]:
        for a, b in itertools.combinations(p["factors"], 2):
            # drop(a) - drop(b) = mean AUROC(+b) - mean AUROC(+a): the baseline cancels
            terms = _mean([f"{b}/{scenario}"], p["methods"]) + _mean([f"{a}/{scenario}"], p["methods"], weight=-1.0)
            label = f"{scenario} drop {a.upper()} - drop {b.upper()}"
            leaves.append(Leaf(label, terms, Bound(above=-margin, below=margin)))
            point = _point(evidence, terms)
            if point is not None and (widest is None or abs(point) > abs(_point(evidence, widest) or 0.0)):
                widest, widest_label = terms, f"widest difference of mean AUROC drops ({label})"
    return Plan(Node(finding.id, "all", tuple(leaves)), widest, widest_label)


@rule("largest_drop")
def largest_drop(finding: Finding, evidence: Evidence) -> Plan:
    p = finding.params
    scenario, factor = p["scenario"], p["factor"]
    leaves = tuple(
        Leaf(
            f"{scenario} drop {factor.upper()} - drop {other.upper()} (recall)",
            _mean([f"{other}/{scenario}"], p["methods"], RECALL)
            + _mean([f"{factor}/{scenario}"], p["methods"], RECALL, -1.0),
            Bound(above=0.0),
        )
        for other in p["others"]
    )
    return Plan(Node(finding.id, "all", leaves), headline_label="how much more mean Recall@1%FPR US loses")


@rule("combination_worse")
def combination_worse(finding: Finding, evidence: Evidence) -> Plan:
    p = finding.params
    leaves = tuple(
        Leaf(
            f"{scenario} +{factor.upper()} - all three",
            _mean([f"{factor}/{scenario}"], p["methods"]) + _mean([f"main/{scenario}"], p["methods"], weight=-1.0),
            Bound(above=0.0),
        )
        for scenario in p["scenarios"]
        for factor in p["factors"]
    )
    return Plan(Node(finding.id, "all", leaves), headline_label="mean extra AUROC drop of all three factors")


@rule("at_least")
def at_least(finding: Finding, evidence: Evidence) -> Plan:
    p = finding.params
    terms = _mean([p["dataset"]], p["methods"])
    leaf = Leaf(f"{p['dataset']} mean AUROC", terms, Bound(above=p["threshold"]))
    return Plan(Node(finding.id, "all", (leaf,)), terms, "the methods' mean AUROC")


# ------------------------------------------------------------------------------------------------ 4.2
def _scenario_mean(method: str, scenarios: Sequence[str], metric: str = AUROC, weight: float = 1.0) -> Terms:
    return _mean([f"main/{s}" for s in scenarios], [method], metric, weight)


@rule("no_winner")
def no_winner(finding: Finding, evidence: Evidence) -> Plan:
    p = finding.params
    methods, scenarios = p["methods"], p["scenarios"]
    per_method, worst = [], {}
    for m in methods:
        leaves = []
        for s in scenarios:
            other = _argmax(evidence, f"main/{s}", [o for o in methods if o != m], AUROC) or "?"
            terms = ((1.0, _cell(f"main/{s}", other)), (-1.0, _cell(f"main/{s}", m)))
            leaves.append(Leaf(f"{s}: {other} - {m}", terms, Bound(above=0.0)))
            point = _point(evidence, terms)
            if point is not None and (m not in worst or point > worst[m][0]):
                worst[m] = (point, terms, f"{s}: {other} - {m}")
        per_method.append(Node(f"{m} beaten somewhere", "any", tuple(leaves)))
    means = {m: v for m in methods if (v := _point(evidence, _scenario_mean(m, scenarios))) is not None}
    leader = max(means, key=lambda m: means[m]) if means else None
    if leader is None or leader not in worst:
        return Plan(Node(finding.id, "all", tuple(per_method)))
    _, terms, label = worst[leader]
    return Plan(
        Node(finding.id, "all", tuple(per_method)),
        terms,
        f"AUROC margin by which the best-mean method is beaten ({label})",
    )


@rule("best_mean")
def best_mean(finding: Finding, evidence: Evidence) -> Plan:
    p = finding.params
    best, scenarios = p["method"], p["scenarios"]
    leaves, closest = [], None
    for other in (m for m in p["methods"] if m != best):
        terms = _scenario_mean(best, scenarios) + _scenario_mean(other, scenarios, weight=-1.0)
        leaves.append(Leaf(f"{best} - {other} (mean AUROC)", terms, Bound(above=0.0)))
        point = _point(evidence, terms)
        if point is not None and (closest is None or point < closest[0]):
            closest = (point, terms, other)
    if closest is None:
        return Plan(Node(finding.id, "all", tuple(leaves)))
    return Plan(
        Node(finding.id, "all", tuple(leaves)), closest[1], f"mean AUROC margin over the runner-up ({closest[2]})"
    )


@rule("preferred_by_anomaly")
def preferred_by_anomaly(finding: Finding, evidence: Evidence) -> Plan:
    p = finding.params
    leaves = []
    for kind in ("surface", "logical"):
        winner, loser = p[kind]
        scenarios = p[f"{kind}_scenarios"]
        terms = _scenario_mean(winner, scenarios) + _scenario_mean(loser, scenarios, weight=-1.0)
        leaves.append(Leaf(f"{kind}: {winner} - {loser} (mean AUROC)", terms, Bound(above=0.0)))
    return Plan(Node(finding.id, "all", tuple(leaves)), headline_label="mean of the two AUROC margins")


@rule("metrics_disagree")
def metrics_disagree(finding: Finding, evidence: Evidence) -> Plan:
    p = finding.params
    first, second, methods = p["first"], p["second"], p["methods"]
    scenarios, best = [], None
    for s in p["scenarios"]:
        dataset = f"main/{s}"
        a = _argmax(evidence, dataset, methods, first) or "?"
        b = _argmax(evidence, dataset, [m for m in methods if m != a], second) or "?"
        on_first = ((1.0, _cell(dataset, a, first)), (-1.0, _cell(dataset, b, first)))
        on_second = ((1.0, _cell(dataset, b, second)), (-1.0, _cell(dataset, a, second)))
        leaves = (
            Leaf(f"{s}: {first} {a} - {b}", on_first, Bound(above=0.0)),
            Leaf(f"{s}: {second} {b} - {a}", on_second, Bound(above=0.0)),
        )
        scenarios.append(Node(f"{s}: {a} vs {b}", "all", leaves))
        points = [_point(evidence, on_first), _point(evidence, on_second)]
        if None not in points and (best is None or min(points) > best[0]):  # type: ignore[type-var]
            best = (min(points), on_second, f"{second} of {b} - {a} on {s}")  # type: ignore[type-var]
    if best is None:
        return Plan(Node(finding.id, "any", tuple(scenarios)))
    return Plan(Node(finding.id, "any", tuple(scenarios)), best[1], f"the clearest disagreement: {best[2]}")


@rule("weakest")
def weakest(finding: Finding, evidence: Evidence) -> Plan:
    p = finding.params
    leaves = tuple(
        Leaf(
            f"{strong} - {weak} (mean AUROC)",
            _scenario_mean(strong, p["scenarios"]) + _scenario_mean(weak, p["scenarios"], weight=-1.0),
            Bound(above=0.0),
        )
        for weak in p["weak"]
        for strong in p["strong"]
    )
    return Plan(Node(finding.id, "all", leaves), headline_label="mean AUROC gap, weak to strong methods")


# ------------------------------------------------------------------------------------------------ 4.4
def _size_cell(evidence: Evidence, scenario: str, method: str, fraction: float) -> CellKey:
    """Table 7's cell of `method` at `fraction`; PatchCore's uncapped run where the capped one has no cell."""
    dataset = f"table7/{fraction:g}/main/{scenario}"
    if method == "patchcore" and evidence.get(dataset, method, AUROC) is None:
        return _cell(dataset, "patchcore_uncapped")
    return _cell(dataset, method)


def _fraction(evidence: Evidence, scenario: str, method: str, which: str | float) -> float | None:
    available = [f for f in evidence.fractions(scenario) if evidence.get(*_size_cell(evidence, scenario, method, f))]
    if not available:
        return None
    if which == "min":
        return available[0]
    if which == "max":
        return available[-1]
    return float(which) if float(which) in available else None


@rule("size_change")
def size_change(finding: Finding, evidence: Evidence) -> Plan:
    leaves = []
    for scenario, method, start, end, above, below in finding.params["parts"]:
        low, high = _fraction(evidence, scenario, method, start), _fraction(evidence, scenario, method, end)
        label = f"{scenario} {method} gain {start} -> {end}"
        if low is None or high is None or not low < high:
            terms: Terms = ((1.0, _cell(f"table7/{end}/main/{scenario}", method)),)  # absent: no data
        else:
            label = f"{scenario} {method} gain {low:g} -> {high:g}"
            terms = (
                (1.0, _size_cell(evidence, scenario, method, high)),
                (-1.0, _size_cell(evidence, scenario, method, low)),
            )
        leaves.append(Leaf(label, terms, Bound(above=above, below=below)))
    return Plan(Node(finding.id, "all", tuple(leaves)), headline_label="mean AUROC gain over the parts")


def runs_beyond(finding: Finding, evidence: Evidence, confidence: float) -> Verdict:
    """Holds when a PatchCore run on more than `images` training images has a finite AUROC."""
    p = finding.params
    runs = []
    for dataset, method, metric in evidence.cells:
        if dataset.startswith("table7/") and method in p["methods"] and metric == AUROC:
            fraction = float(dataset.split("/")[1])
            if fraction > p["fraction"]:
                runs.append((fraction, method, dataset, evidence.cells[(dataset, method, metric)].value))
    if not runs:
        return no_data("", f"no PatchCore cell beyond the {p['fraction']:g} training prefix (Table 7)")
    if evidence.train_images is None:
        return Verdict(UNDECIDED, None, None, "training-set size unknown (pass --train-images or --params)")
    sized = sorted((round(f * evidence.train_images), f, m, v) for f, m, _, v in runs)
    large = [r for r in sized if r[0] > p["images"]]
    if not large:
        n, f, m, _ = sized[-1]
        return Verdict(
            UNDECIDED,
            float(n),
            None,
            f"largest {m} run: {n} training images (fraction {f:g}): too few to "
            f"test the paper's {p['images']}-image memory limit",
        )
    ran = [r for r in large if np.isfinite(r[3])]
    if ran:
        n, f, m, v = ran[-1]
        return Verdict(HOLDS, float(n), None, f"{m} ran on {n} training images (fraction {f:g}): AUROC {v:.2f}")
    n, f, m, _ = large[-1]
    return Verdict(CONTRADICTED, float(n), None, f"{m} on {n} training images (fraction {f:g}) has no AUROC")


RULES["runs_beyond"] = runs_beyond


# ------------------------------------------------------------------------------------------------ entry points
def decide(evidence: Evidence, confidence: float, findings: Sequence[Finding] = FINDINGS) -> list[Verdict]:
    """Every finding's verdict, in `findings` order."""
    out = []
    for finding in findings:
        if finding.rule not in RULES:
            raise KeyError(f"finding {finding.id}: unknown rule {finding.rule!r}")
        out.append(replace(RULES[finding.rule](finding, evidence, confidence), finding=finding.id, label=""))
    return out


def decide_all(
    metrics_path: Path,
    runs: Path | None,
    size_runs: Path | None,
    confidence: float | None = None,
    *,
    train_images: int | None = None,
) -> list[Verdict]:
    """Every finding decided from a metrics.json and its run files; `confidence` defaults to the runs' own."""
    evidence = load_evidence(Path(metrics_path), runs, size_runs, train_images=train_images)
    return decide(evidence, evidence.confidence if confidence is None else confidence)


def summary(verdicts: Sequence[Verdict], profile: str = "") -> str:
    return summary_line(verdicts, profile)
