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

from miad.catalog import METHOD_NAMES, METHOD_TITLES, SCENARIOS

MISSING = "—"
METRIC_TITLES = {"image_auroc": "AUROC", "recall_at_fpr": "Recall@1%FPR", "aupro": "AUPRO@0.3"}

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


def to_markdown(table: Table, notes: Sequence[str] = ()) -> str:
    methods = [METHOD_TITLES[m] for m in METHOD_NAMES]
    multi = len(table.metrics) > 1
    head = ["Scenario", *(["Metric"] if multi else []), *methods]
    lines = [f"**{table.caption}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row, title in table.row_titles.items():
        for position, metric in enumerate(table.metrics):
            label = [title if position == 0 else ""] + ([METRIC_TITLES[metric]] if multi else [])
            values = [table.cell(row, m, metric).text() for m in METHOD_NAMES]
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
    cols = "l" + ("l" if multi else "") + "c" * len(METHOD_NAMES)
    head = ["Scenario", *(["Metric"] if multi else []), *(METHOD_TITLES[m] for m in METHOD_NAMES)]
    lines = [r"\begin{tabular}{" + cols + "}", r"\toprule", " & ".join(head) + r" \\", r"\midrule"]
    for row, title in table.row_titles.items():
        for position, metric in enumerate(table.metrics):
            label = [title if position == 0 else ""] + ([METRIC_TITLES[metric].replace("%", r"\%")] if multi else [])
            values = [table.cell(row, m, metric).text().replace(MISSING, "--") for m in METHOD_NAMES]
            lines.append(" & ".join(label + values) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"
