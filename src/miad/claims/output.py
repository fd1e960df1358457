"""The verdicts written out: results/tables/claims.md (for people), claims.csv (one row per finding and per part,
for tools) and the `claims` section of metrics.json (numbers only, so `dvc metrics diff` and `miad compare` follow
them: verdict +1 holds, 0 undecided, -1 contradicted)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from miad.atomic import write_text_atomic
from miad.claims.findings import FINDINGS, Finding
from miad.claims.rules import CONTRADICTED, HOLDS, UNDECIDED, Verdict, summary_line

VERDICT_CODES = {HOLDS: 1, UNDECIDED: 0, CONTRADICTED: -1}
CSV_COLUMNS = ("finding", "part", "section", "verdict", "effect", "ci_low", "ci_high", "confidence", "detail")
_BY_ID = {f.id: f for f in FINDINGS}


def _finding(verdict: Verdict) -> Finding | None:
    return _BY_ID.get(verdict.finding)


def effect_text(verdict: Verdict) -> str:
    """`0.12 [0.05, 0.20]`, `0.12` without interval, `—` without data."""
    if verdict.effect is None:
        return "—"
    text = f"{verdict.effect:.3g}" if abs(verdict.effect) >= 10 else f"{verdict.effect:+.2f}"
    return text if verdict.interval is None else f"{text} [{verdict.interval[0]:+.2f}, {verdict.interval[1]:+.2f}]"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def claims_table(verdicts: Sequence[Verdict]) -> str:
    """The per-claim table (Markdown), one line per finding."""
    lines = ["| finding | section | we test | verdict | effect [interval] |", "|---|---|---|---|---|"]
    for v in verdicts:
        f = _finding(v)
        statement = f.statement if f else ""
        section = f.section if f else ""
        lines.append(f"| {v.finding} | {section} | {_cell(statement)} | **{v.verdict}** | {effect_text(v)} |")
    return "\n".join(lines) + "\n"


def to_markdown(verdicts: Sequence[Verdict], *, profile: str = "", confidence: float | None = None) -> str:
    level = f" at {confidence:g} confidence" if confidence is not None else ""
    out = [
        "# The paper's findings, decided from our results",
        "",
        f"**{summary_line(verdicts, profile)}.** Each verdict{level}: *holds* when the effect's bootstrap interval "
        "lies entirely on the side the paper claims, *contradicted* when entirely on the other side, *undecided* "
        "otherwise or without data. Compound findings decide each part at the Bonferroni-adjusted confidence and "
        "count the parts (`src/miad/claims/rules.py`). A contradicted finding is a result, not a failure.",
        "",
        claims_table(verdicts),
        "## How each finding was read and decided",
        "",
    ]
    for v in verdicts:
        f = _finding(v)
        out.append(f"### {v.finding}: {v.verdict}")
        out.append("")
        if f is not None:
            out += [f"> {f.quote} (section {f.section})", ""]
            out.append(f"We test: {f.statement}. Cells: {f.scope}. Rule `{f.rule}`: {f.note}")
            if f.backbones:
                out.append("Rests on the paper's backbones: a profile with other backbones may differ.")
            out.append("")
        out += [f"Effect {effect_text(v)}; {v.detail}.", ""]
        leaves = [leaf for leaf in v.leaves() if leaf is not v]
        if leaves:
            out += ["| part | verdict | effect [interval] | detail |", "|---|---|---|---|"]
            out += [f"| {_cell(p.label)} | {p.verdict} | {effect_text(p)} | {_cell(p.detail)} |" for p in leaves]
            out.append("")
    return "\n".join(out)


def _number(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def to_csv(verdicts: Sequence[Verdict]) -> str:
    """One row per finding (part empty), then one per part of it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for v in verdicts:
        f = _finding(v)
        rows = [v, *(leaf for leaf in v.leaves() if leaf is not v)]
        for row in rows:
            low, high = row.interval if row.interval is not None else (None, None)
            writer.writerow(
                [
                    v.finding,
                    row.label if row is not v else "",
                    f.section if f else "",
                    row.verdict,
                    _number(row.effect),
                    _number(low),
                    _number(high),
                    _number(row.confidence),
                    row.detail,
                ]
            )
    return buffer.getvalue()


def claims_section(verdicts: Sequence[Verdict]) -> dict[str, dict[str, float]]:
    """metrics.json's `claims`: {finding: {verdict, effect, effect_ci_low, effect_ci_high}, summary: counts}."""
    out: dict[str, dict[str, float]] = {}
    for v in verdicts:
        row: dict[str, float] = {"verdict": float(VERDICT_CODES[v.verdict])}
        if v.effect is not None:
            row["effect"] = float(v.effect)
        if v.interval is not None:
            row["effect_ci_low"], row["effect_ci_high"] = (float(b) for b in v.interval)
        out[v.finding] = row
    out["summary"] = {
        "findings": float(len(verdicts)),
        **{name: float(sum(v.verdict == name for v in verdicts)) for name in (HOLDS, CONTRADICTED, UNDECIDED)},
    }
    return out


def docs_page() -> str:
    """docs/claims.md: every finding, the rule that reads it and why (generated from findings.py; a test keeps the
    committed page equal to it)."""
    out = [
        "# The paper's findings as rules",
        "",
        "`miad claims` (or the report stage) decides each finding below from `results/metrics.json` and the run files' "
        "bootstrap replicates, and writes `results/tables/claims.md` and `claims.csv`. A finding *holds* when its "
        "effect's interval lies entirely on the side the paper claims, is *contradicted* when it lies entirely on the "
        "other side, and is *undecided* otherwise or without data. Compound findings decide each part at the "
        "Bonferroni-adjusted confidence and count the parts (all / more than half / at least one). Differences of "
        "methods on one test split, of Table 7's prefixes, and of a scenario's dataset variants (counterfactuals of "
        "one image plan, resampled alike) are paired. Each reading of a vague word holds on the paper's own "
        "Tables 3-7. Findings marked *backbones* rest on the paper's backbones and may differ on Lite0 without "
        "contradicting their cause. This page is generated by `miad.claims.output.docs_page` from "
        "`src/miad/claims/findings.py`.",
        "",
        "| finding | section | we test | rule | backbones |",
        "|---|---|---|---|---|",
    ]
    out += [
        f"| [{f.id}](#{f.id.replace('.', '')}) | {f.section} | {_cell(f.statement)} | `{f.rule}` | "
        f"{'yes' if f.backbones else 'no'} |"
        for f in FINDINGS
    ]
    out.append("")
    for f in FINDINGS:
        out += [f"## {f.id}", "", f"> {f.quote}", "", f"Cells: {f.scope}.", "", f"Reading: {f.note}", ""]
    return "\n".join(out)


def write_claims(
    verdicts: Sequence[Verdict], out_dir: Path, *, profile: str = "", confidence: float | None = None
) -> tuple[Path, Path]:
    """Write `out_dir`/claims.md and claims.csv (atomically); return their paths."""
    md, table = Path(out_dir) / "claims.md", Path(out_dir) / "claims.csv"
    if confidence is None:
        confidence = next((v.confidence for v in verdicts if v.confidence is not None), None)
    write_text_atomic(md, to_markdown(verdicts, profile=profile, confidence=confidence))
    write_text_atomic(table, to_csv(verdicts))
    return md, table
