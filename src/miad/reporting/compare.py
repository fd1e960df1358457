"""`miad compare`: "did I reproduce it?" Your results/metrics.json against a reference, cell by cell.

The reference is a metrics file or a git revision (the committed results/metrics.json by default), read
like `dvc metrics diff` reads it; unlike that, every cell is judged against a tolerance, cells missing on
either side are named, and the verdict is an exit status a script can use.
"""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TOLERANCE = 1e-6  # absolute; the same bytes give 0, a CPU that computes other float bits gives more


class CompareError(ValueError):
    """A reference or metrics file that cannot be read; the message names it."""


CellKey = tuple[str, str, str]  # (dataset, method, metric), e.g. ("main/electrical_insulator", "rd", "image_auroc")


@dataclass(frozen=True)
class Cell:
    """One metric of one method on one dataset, ours beside the reference's."""

    key: CellKey
    ours: float | None  # None: we have no such cell
    reference: float | None  # None: the reference has no such cell

    @property
    def delta(self) -> float | None:
        if self.ours is None or self.reference is None:
            return None
        if math.isnan(self.ours) and math.isnan(self.reference):
            return 0.0
        return self.ours - self.reference


@dataclass(frozen=True)
class Comparison:
    """Every cell of both files and the tolerances they were judged by."""

    cells: tuple[Cell, ...]
    tolerances: Mapping[str, float]  # metric name -> absolute tolerance; "*" for the others

    def tolerance(self, metric: str) -> float:
        return self.tolerances.get(metric, self.tolerances.get("*", DEFAULT_TOLERANCE))

    def beyond(self) -> list[Cell]:
        """Cells on both sides whose difference exceeds the tolerance (NaN on one side only counts)."""
        out = []
        for cell in self.cells:
            delta = cell.delta
            if delta is not None and not abs(delta) <= self.tolerance(cell.key[2]):
                out.append(cell)
        return out

    def missing(self) -> list[Cell]:
        return [c for c in self.cells if c.ours is None]

    def extra(self) -> list[Cell]:
        return [c for c in self.cells if c.reference is None]

    def identical(self) -> int:
        return sum(1 for c in self.cells if c.delta == 0.0)

    @property
    def reproduced(self) -> bool:
        return not self.beyond() and not self.missing()


def flatten(metrics: Mapping[str, object], source: str) -> dict[CellKey, float]:
    """{(dataset, method, metric): value} of a metrics.json ({dataset: {method: {metric: value}}})."""
    if not isinstance(metrics, Mapping):
        raise CompareError(f"{source}: expected a mapping of datasets at the top level")
    cells = {}
    for dataset, methods in metrics.items():
        if not isinstance(methods, Mapping):
            raise CompareError(f"{source}: {dataset}: expected a mapping of methods, got {methods!r}")
        for method, values in methods.items():
            if not isinstance(values, Mapping):
                raise CompareError(f"{source}: {dataset}.{method}: expected a mapping of metrics, got {values!r}")
            for metric, value in values.items():
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise CompareError(f"{source}: {dataset}.{method}.{metric}: expected a number, got {value!r}")
                cells[(dataset, method, metric)] = float(value)
    return cells


def compare_metrics(
    ours: Mapping[str, object], reference: Mapping[str, object], tolerances: Mapping[str, float], *, sources=("", "")
) -> Comparison:
    """Pair every cell of `ours` with the reference's."""
    mine, theirs = flatten(ours, sources[0] or "ours"), flatten(reference, sources[1] or "reference")
    keys = sorted(set(mine) | set(theirs))
    return Comparison(tuple(Cell(k, mine.get(k), theirs.get(k)) for k in keys), dict(tolerances))


def read_metrics(path: Path) -> dict:
    """A metrics.json from disk."""
    if not path.is_file():
        raise CompareError(f"{path}: no such metrics file (run `make reproduce` or `dvc repro` first)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise CompareError(f"{path}: not valid JSON: {exc}") from None


def read_reference(spec: str, metrics_path: Path) -> tuple[dict, str]:
    """(metrics, description) of a reference: a metrics file, or a git revision's copy of `metrics_path`."""
    if Path(spec).is_file():
        return read_metrics(Path(spec)), spec
    absolute = metrics_path.resolve()
    top = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"], cwd=absolute.parent, capture_output=True, text=True, check=False
    )
    if top.returncode != 0:
        raise CompareError(f"reference {spec!r}: not a file, and {metrics_path} is not inside a git repository")
    relative = absolute.relative_to(Path(top.stdout.strip()).resolve()).as_posix()
    shown = subprocess.run(
        ["git", "show", f"{spec}:{relative}"], cwd=absolute.parent, capture_output=True, text=True, check=False
    )
    if shown.returncode != 0:
        raise CompareError(
            f"reference {spec!r}: neither a file nor a git revision holding {relative} ({shown.stderr.strip()})"
        )
    try:
        return json.loads(shown.stdout), f"{relative} at git revision {spec}"
    except ValueError as exc:
        raise CompareError(f"{relative} at git revision {spec}: not valid JSON: {exc}") from None


def parse_tolerances(items: list[str] | None) -> dict[str, float]:
    """`--tolerance 1e-6` (every metric) and `--tolerance aupro=1e-3` (one metric) -> {metric or "*": value}."""
    tolerances = {"*": DEFAULT_TOLERANCE}
    for item in items or []:
        metric, _, value = item.rpartition("=")
        try:
            number = float(value)
        except ValueError:
            raise CompareError(f"--tolerance {item!r}: expected a number or METRIC=NUMBER") from None
        if not number >= 0:
            raise CompareError(f"--tolerance {item!r}: expected a non-negative number")
        tolerances[metric or "*"] = number
    return tolerances


def _value(value: float | None) -> str:
    return "—" if value is None else f"{value:.6f}"


def format_comparison(comparison: Comparison, reference: str, *, show: int = 40) -> str:
    """A human summary: counts, then the cells beyond tolerance and the missing ones (at most `show` each)."""
    both = [c for c in comparison.cells if c.ours is not None and c.reference is not None]
    beyond, missing, extra = comparison.beyond(), comparison.missing(), comparison.extra()
    tolerances = ", ".join(f"{k if k != '*' else 'any metric'} {v:g}" for k, v in comparison.tolerances.items())
    lines = [
        f"reference: {reference}",
        f"tolerance (absolute): {tolerances}",
        f"{len(both)} cells on both sides: {comparison.identical()} identical, "
        f"{len(both) - len(beyond)} within tolerance, {len(beyond)} beyond",
    ]
    if missing:
        lines.append(f"{len(missing)} reference cells missing from yours")
    if extra:
        lines.append(f"{len(extra)} cells of yours not in the reference (not judged)")
    rows = [("beyond tolerance", beyond), ("missing from yours", missing)]
    for title, cells in rows:
        if cells:
            lines.append(f"\n{title}:")
            lines.append(
                f"  {'dataset':40s} {'method':10s} {'metric':14s} {'yours':>10s} {'reference':>10s} {'delta':>10s}"
            )
            for cell in cells[:show]:
                dataset, method, metric = cell.key
                delta = "" if cell.delta is None else f"{cell.delta:+.2e}"
                lines.append(
                    f"  {dataset:40s} {method:10s} {metric:14s} {_value(cell.ours):>10s} "
                    f"{_value(cell.reference):>10s} {delta:>10s}"
                )
            if len(cells) > show:
                lines.append(f"  ... and {len(cells) - show} more")
    lines.append("\nREPRODUCED" if comparison.reproduced else "\nNOT REPRODUCED")
    return "\n".join(lines)
