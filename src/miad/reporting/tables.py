"""Paper-style tables: each cell shows our value with its uncertainty beside the paper's value.

Cells read `ours±seed-spread [interval] / paper`, with `†` after the paper's value where it lies outside our
interval; `—` stands where we have not computed a value yet. Tables are written as Markdown (for people), CSV
(long format with every number, the difference to the paper included, for tools) and LaTeX (for papers).
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
from miad.reporting.estimates import Estimate, as_estimate, mean_of

MISSING = "—"
OUTSIDE = "†"  # after the paper's value: it lies outside our bootstrap interval
METRIC_TITLES = {
    "image_auroc": "AUROC",
    "recall_at_fpr": "Recall@1%FPR",
    "aupro": "AUPRO@0.3",
    "electrical_insulator": "EI",
    "witness_mark": "WM",
}

# Our results: {dataset key "<variant>/<scenario>": {method: {metric: Estimate (or a bare value)}}}
Results = Mapping[str, Mapping[str, Mapping[str, Estimate | float]]]


def paper_results() -> dict[str, Any]:
    """The paper's Tables 3-7 as transcribed in paper_results.yaml."""
    text = resources.files("miad.reporting").joinpath("paper_results.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


@dataclass(frozen=True)
class Cell:
    row: str  # scenario key or "mean"
    method: str
    metric: str
    ours: Estimate | None
    paper: float | None

    @property
    def delta(self) -> float | None:
        return None if self.ours is None or self.paper is None else self.ours.value - self.paper

    @property
    def paper_outside(self) -> bool:
        """The paper's value lies outside our interval."""
        return self.ours is not None and self.ours.excludes(self.paper)

    def ours_text(self) -> str:
        """`0.56`, `0.56 [0.41, 0.72]`, or with several training seeds `0.56±0.03 [0.41, 0.72]`."""
        if self.ours is None:
            return MISSING
        text = f"{self.ours.value:.2f}"
        if self.ours.seed_std is not None:
            text += f"±{self.ours.seed_std:.2f}"
        bounds = self.ours.interval
        return text if bounds is None else f"{text} [{bounds[0]:.2f}, {bounds[1]:.2f}]"

    def text(self, outside_mark: str = OUTSIDE) -> str:
        paper = MISSING if self.paper is None else f"{self.paper:.2f}"
        return f"{self.ours_text()} / {paper}{outside_mark if self.paper_outside else ''}"


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


def _ours(results: Results, dataset: str, method: str, metric: str) -> Estimate | None:
    return as_estimate(results.get(dataset, {}).get(method, {}).get(metric))


def main_table(name: str, results: Results, metrics: tuple[str, ...], variant: str = "main") -> Table:
    """Table 3 (AUROC, Recall@1%FPR) or Table 4 (AUPRO): scenarios x the six methods, plus the mean."""
    paper = paper_results()[name]
    cells = []
    for method in METHOD_NAMES:
        for position, metric in enumerate(metrics):
            column = []
            for scenario in SCENARIOS:
                ours = _ours(results, f"{variant}/{scenario}", method, metric)
                theirs = paper[scenario][method]
                cells.append(Cell(scenario, method, metric, ours, theirs[position] if len(metrics) > 1 else theirs))
                column.append(ours)
            mean = paper["mean"][method]
            cells.append(Cell("mean", method, metric, mean_of(column), mean[position] if len(metrics) > 1 else mean))
    rows = {key: info.title for key, info in SCENARIOS.items()} | {"mean": "Mean"}
    captions = {
        "table3": "Table 3. Image-level classification: AUROC and Recall@1%FPR (ours [95% interval] / paper).",
        "table4": "Table 4. Segmentation: AUPRO up to 30% pixel FPR (ours [95% interval] / paper).",
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
    lines += ["", legend(table), *notes]
    return "\n".join(lines) + "\n"


def legend(table: Table) -> str:
    """How to read a cell, with the counts of this table's marked cells."""
    judged = [c for c in table.cells if c.paper is not None and c.ours is not None and c.ours.interval is not None]
    outside = sum(c.paper_outside for c in judged)
    confidence = round(100 * judged[0].ours.confidence) if judged else 95  # type: ignore[union-attr]
    return (
        f"Cells: ours [{confidence}% bootstrap interval over test images] / paper; {OUTSIDE} = the paper's value lies "
        f"outside our interval ({outside} of {len(judged)} cells); ±s = standard deviation over training seeds, where "
        f"several ran; {MISSING} = not computed yet."
    )


def to_csv(table: Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["table", "row", "method", "metric", "ours", "ci_low", "ci_high", "seed_std", "paper", "delta", "paper_outside"]
    )
    fmt = lambda v: "" if v is None else f"{v:.6f}"  # noqa: E731
    for c in table.cells:
        bounds = (None, None) if c.ours is None or c.ours.interval is None else c.ours.interval
        seed_std = None if c.ours is None else c.ours.seed_std
        values = [None if c.ours is None else c.ours.value, *bounds, seed_std, c.paper, c.delta]
        writer.writerow([table.name, c.row, c.method, c.metric, *map(fmt, values), int(c.paper_outside)])
    return buffer.getvalue()


def to_latex(table: Table) -> str:
    multi = len(table.metrics) > 1
    cols = "l" + ("l" if multi else "") + "c" * len(table.columns)
    head = [table.row_header, *(["Metric"] if multi else []), *map(_column_title, table.columns)]
    lines = [r"\begin{tabular}{" + cols + "}", r"\toprule", " & ".join(head) + r" \\", r"\midrule"]
    for row, title in table.row_titles.items():
        for position, metric in enumerate(table.metrics):
            label = [title if position == 0 else ""] + ([METRIC_TITLES[metric].replace("%", r"\%")] if multi else [])
            values = [
                table.cell(row, m, metric).text(r"$^\dagger$").replace(MISSING, "--").replace("±", r"$\pm$")
                for m in table.columns
            ]
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
                ours = _ours(results, f"{variant}/{scenario}", method, metric)
                cells.append(Cell(variant, method, metric, ours, paper[variant][method][position]))
                ours_row.append(ours)
            cells.append(Cell(variant, "mean", metric, mean_of(ours_row), paper[variant]["mean"][position]))
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
                ours = _ours(results.get(fraction, {}), f"main/{scenario}", method, "image_auroc")
                theirs = paper.get(fraction, {}).get(method)
                paper_value = None if theirs is None else theirs[position]
                cells.append(Cell(f"{fraction:g}", method, scenario, ours, paper_value))
    rows = {f"{f:g}": f"{round(100 * f)}%" for f in fractions}
    caption = (
        "Table 7. Image AUROC by training-set size (nested prefixes of the training set), "
        "electrical insulator (EI) and witness mark (WM)."
    )
    return Table("table7", caption, rows, SIZE_SCENARIOS, tuple(cells), (*FACTOR_METHODS, UNCAPPED), "Size")
