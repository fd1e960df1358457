"""Paper-style tables: each cell shows our value beside the paper's, with the difference.

Cells read `ours / paper (±delta)`; `—` stands where we have not computed a value yet. Tables are
written as Markdown (for people), CSV (long format, for tools) and LaTeX (for papers).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from miad.catalog import SCENARIOS
from miad.method_catalog import METHOD_NAMES, METHOD_TITLES

MISSING = "—"
METRIC_TITLES = {
    "image_auroc": "AUROC",
    "recall_at_fpr": "Recall@1%FPR",
    "aupro": "AUPRO@0.3",
    "electrical_insulator": "EI",
    "witness_mark": "WM",
}

# Our results: {dataset key "<variant>/<scenario>": {method: {metric: value}}}
Results = Mapping[str, Mapping[str, Mapping[str, float]]]


def paper_results() -> dict[str, Any]:
    """The paper's Tables 3-7 as transcribed in paper_results.yaml."""
    text = resources.files("miad.reporting").joinpath("paper_results.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


@dataclass(frozen=True)
class Cell:
    row: str  # scenario key or "mean"
    method: str
    metric: str
    ours: float | None
    paper: float | None

    @property
    def delta(self) -> float | None:
        return None if self.ours is None or self.paper is None else self.ours - self.paper

    def text(self) -> str:
        ours = MISSING if self.ours is None else f"{self.ours:.2f}"
        paper = MISSING if self.paper is None else f"{self.paper:.2f}"
        delta = "" if self.delta is None else f" ({self.delta:+.2f})"
        return f"{ours} / {paper}{delta}"


@dataclass(frozen=True)
class Table:
    name: str  # "table3"
    caption: str
    row_titles: Mapping[str, str]  # row key -> title, in order
    metrics: tuple[str, ...]
    cells: tuple[Cell, ...]
    columns: tuple[str, ...] = METHOD_NAMES  # method keys (or "mean"), in column order
    row_header: str = "Scenario"

    def cell(self, row: str, method: str, metric: str) -> Cell:
        return next(c for c in self.cells if (c.row, c.method, c.metric) == (row, method, metric))


def _mean(values: Sequence[float | None]) -> float | None:
    """Mean over all rows, or None while any row is missing (a partial mean would mislead)."""
    return None if not values or any(v is None for v in values) else sum(values) / len(values)  # type: ignore[arg-type]


def main_table(name: str, results: Results, metrics: tuple[str, ...], variant: str = "main") -> Table:
    """Table 3 (AUROC, Recall@1%FPR) or Table 4 (AUPRO): scenarios x the six methods, plus the mean."""
    paper = paper_results()[name]
    cells = []
    for method in METHOD_NAMES:
        for position, metric in enumerate(metrics):
            column = []
            for scenario in SCENARIOS:
                ours = results.get(f"{variant}/{scenario}", {}).get(method, {}).get(metric)
                theirs = paper[scenario][method]
                cells.append(Cell(scenario, method, metric, ours, theirs[position] if len(metrics) > 1 else theirs))
                column.append(ours)
            mean = paper["mean"][method]
            cells.append(Cell("mean", method, metric, _mean(column), mean[position] if len(metrics) > 1 else mean))
    rows = {key: info.title for key, info in SCENARIOS.items()} | {"mean": "Mean"}
    captions = {
        "table3": "Table 3. Image-level classification: AUROC and Recall@1%FPR (ours / paper (delta)).",
        "table4": "Table 4. Segmentation: AUPRO up to 30% pixel FPR (ours / paper (delta)).",
    }
    return Table(name, captions[name], rows, metrics, tuple(cells))


def _column_title(key: str) -> str:
    return {"patchcore_uncapped": "PatchCore (no cap)"}.get(key) or METHOD_TITLES.get(key, key.capitalize())


def to_markdown(table: Table, notes: Sequence[str] = ()) -> str:
    multi = len(table.metrics) > 1
    head = [table.row_header, *(["Metric"] if multi else []), *map(_column_title, table.columns)]
    lines = [f"**{table.caption}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row, title in table.row_titles.items():
        for position, metric in enumerate(table.metrics):
            label = [title if position == 0 else ""] + ([METRIC_TITLES[metric]] if multi else [])
            values = [table.cell(row, m, metric).text() for m in table.columns]
            lines.append("| " + " | ".join(label + values) + " |")
    lines += ["", f"Cells: ours / paper (ours − paper); {MISSING} = not computed yet.", *notes]
    return "\n".join(lines) + "\n"


def to_csv(table: Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["table", "row", "method", "metric", "ours", "paper", "delta"])
    for c in table.cells:
        fmt = lambda v: "" if v is None else f"{v:.6f}"  # noqa: E731
        writer.writerow([table.name, c.row, c.method, c.metric, fmt(c.ours), fmt(c.paper), fmt(c.delta)])
    return buffer.getvalue()


def to_latex(table: Table) -> str:
    multi = len(table.metrics) > 1
    cols = "l" + ("l" if multi else "") + "c" * len(table.columns)
    head = [table.row_header, *(["Metric"] if multi else []), *map(_column_title, table.columns)]
    lines = [r"\begin{tabular}{" + cols + "}", r"\toprule", " & ".join(head) + r" \\", r"\midrule"]
    for row, title in table.row_titles.items():
        for position, metric in enumerate(table.metrics):
            label = [title if position == 0 else ""] + ([METRIC_TITLES[metric].replace("%", r"\%")] if multi else [])
            values = [table.cell(row, m, metric).text().replace(MISSING, "--") for m in table.columns]
            lines.append(" & ".join(label + values) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


FACTOR_METHODS = ("rd", "patchcore", "fastflow", "draem")  # the four methods of Tables 5-7
VARIANT_TITLES = {"baseline": "baseline", "uv": "+UV", "ub": "+UB", "us": "+US", "main": "+UV+US+UB"}


def factor_table(name: str, scenario: str, results: Results) -> Table:
    """Table 5 (electrical_insulator) or 6 (witness_mark): variants x methods, AUROC and Recall@1%FPR."""
    paper = paper_results()[name]
    metrics = ("image_auroc", "recall_at_fpr")
    cells = []
    for variant in VARIANT_TITLES:
        for position, metric in enumerate(metrics):
            ours_row = []
            for method in FACTOR_METHODS:
                ours = results.get(f"{variant}/{scenario}", {}).get(method, {}).get(metric)
                cells.append(Cell(variant, method, metric, ours, paper[variant][method][position]))
                ours_row.append(ours)
            cells.append(Cell(variant, "mean", metric, _mean(ours_row), paper[variant]["mean"][position]))
    title = SCENARIOS[scenario].title
    caption = f"Table {name[-1]}. Impact of the uncontrolled factors on the {title.lower()}: AUROC and Recall@1%FPR."
    return Table(name, caption, dict(VARIANT_TITLES), metrics, tuple(cells), (*FACTOR_METHODS, "mean"), "Factors")


SIZE_SCENARIOS = ("electrical_insulator", "witness_mark")
UNCAPPED = "patchcore_uncapped"  # PatchCore without the paper's 2000-image cap: our extra column


def size_table(results: Mapping[float, Results]) -> Table:
    """Table 7: image AUROC by training-set fraction; per method one row each for EI and WM.

    `results[fraction]["main/<scenario>"][method]["image_auroc"]`; the capped PatchCore cell stays
    empty where the prefix exceeds the cap (the paper's `-`); `patchcore_uncapped` fills it.
    """
    paper = paper_results()["table7"]
    fractions = sorted(results)  # the paper's: 0.1, 0.2, 0.4, 0.8, 1.0
    cells = []
    for fraction in fractions:
        for position, scenario in enumerate(SIZE_SCENARIOS):
            for method in (*FACTOR_METHODS, UNCAPPED):
                ours = results.get(fraction, {}).get(f"main/{scenario}", {}).get(method, {}).get("image_auroc")
                theirs = paper.get(fraction, {}).get(method)
                paper_value = None if theirs is None else theirs[position]
                cells.append(Cell(f"{fraction:g}", method, scenario, ours, paper_value))
    rows = {f"{f:g}": f"{round(100 * f)}%" for f in fractions}
    caption = (
        "Table 7. Image AUROC by training-set size (nested prefixes of the training set), "
        "electrical insulator (EI) and witness mark (WM)."
    )
    return Table("table7", caption, rows, SIZE_SCENARIOS, tuple(cells), (*FACTOR_METHODS, UNCAPPED), "Size")
