"""`miad compare`: "did I reproduce it?" Your results/metrics.json against a reference, cell by cell.

The reference is a metrics file or a git revision (the committed results/metrics.json by default), read
like `dvc metrics diff` reads it; unlike that, every cell is judged, cells missing on either side are named,
and the verdict is an exit status a script can use.

Two ways to judge a cell. By default, statistically: a cell of yours with a bootstrap interval
(`<metric>_ci_low` / `_ci_high` in metrics.json) is reproduced when the reference value lies inside it; a cell
without one (pixel AUROC, an older metrics file) falls back to the tolerance. With `exact`, every number, the
interval bounds included, must agree within the tolerance: the test for "the same bytes on every machine".
"""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TOLERANCE = 1e-6  # absolute; the same bytes give 0, a CPU that computes other float bits gives more
DERIVED_SUFFIXES = ("_ci_low", "_ci_high", "_seed_std")  # numbers about a metric, not metrics themselves


def is_derived(metric: str) -> bool:
    """True for `<metric>_ci_low`, `_ci_high` and `_seed_std`: judged only in exact mode."""
    return metric.endswith(DERIVED_SUFFIXES)


class CompareError(ValueError):
    """A reference or metrics file that cannot be read; the message names it."""


CellKey = tuple[str, str, str]  # (dataset, method, metric), e.g. ("main/electrical_insulator", "rd", "image_auroc")


@dataclass(frozen=True)
class Cell:
    """One metric of one method on one dataset, ours beside the reference's."""

    key: CellKey
    ours: float | None  # None: we have no such cell
    reference: float | None  # None: the reference has no such cell
    interval: tuple[float, float] | None = None  # our bootstrap interval of this metric, where metrics.json has it

    @property
    def inside(self) -> bool | None:
        """Whether the reference lies inside our interval; None without an interval or a reference value."""
        if self.interval is None or self.reference is None:
            return None
        return self.interval[0] <= self.reference <= self.interval[1]

    @property
    def delta(self) -> float | None:
        if self.ours is None or self.reference is None:
            return None
        if math.isnan(self.ours) and math.isnan(self.reference):
            return 0.0
        return self.ours - self.reference


@dataclass(frozen=True)
class Comparison:
    """Every cell of both files, the tolerances and the way they were judged."""

    cells: tuple[Cell, ...]
    tolerances: Mapping[str, float]  # metric name -> absolute tolerance; "*" for the others
    exact: bool = False  # judge every number by the tolerance (else: metrics with an interval by the interval)

    def tolerance(self, metric: str) -> float:
        return self.tolerances.get(metric, self.tolerances.get("*", DEFAULT_TOLERANCE))

    def judged(self) -> list[Cell]:
        """The cells a verdict is made of: every number in exact mode, else the metrics themselves."""
        return [c for c in self.cells if self.exact or not is_derived(c.key[2])]

    def _beyond_tolerance(self, cell: Cell) -> bool:
        delta = cell.delta
        return delta is not None and not abs(delta) <= self.tolerance(cell.key[2])

    def beyond(self) -> list[Cell]:
        """Judged cells on both sides whose difference exceeds the tolerance (NaN on one side only counts)."""
        return [c for c in self.judged() if self._beyond_tolerance(c)]

    def with_interval(self) -> list[Cell]:
        """Judged metric cells on both sides where we have an interval."""
        return [c for c in self.judged() if c.inside is not None]

    def outside(self) -> list[Cell]:
        """Cells whose reference value lies outside our interval."""
        return [c for c in self.with_interval() if not c.inside]

    def failing(self) -> list[Cell]:
        """Cells not reproduced: exact mode, beyond tolerance; else outside the interval, or beyond tolerance
        where there is no interval."""
        if self.exact:
            return self.beyond()
        return [c for c in self.judged() if c.inside is False or (c.inside is None and self._beyond_tolerance(c))]

    def missing(self) -> list[Cell]:
        return [c for c in self.judged() if c.ours is None]

    def extra(self) -> list[Cell]:
        return [c for c in self.judged() if c.reference is None]

    def identical(self) -> int:
        return sum(1 for c in self.judged() if c.delta == 0.0)

    @property
    def reproduced(self) -> bool:
        return not self.failing() and not self.missing()


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


def _interval(cells: Mapping[CellKey, float], key: CellKey) -> tuple[float, float] | None:
    dataset, method, metric = key
    low, high = cells.get((dataset, method, f"{metric}_ci_low")), cells.get((dataset, method, f"{metric}_ci_high"))
    return None if low is None or high is None or is_derived(metric) else (low, high)


def compare_metrics(
    ours: Mapping[str, object],
    reference: Mapping[str, object],
    tolerances: Mapping[str, float],
    *,
    exact: bool = False,
    sources=("", ""),
) -> Comparison:
    """Pair every cell of `ours` (with its interval, where we have one) with the reference's."""
    mine, theirs = flatten(ours, sources[0] or "ours"), flatten(reference, sources[1] or "reference")
    keys = sorted(set(mine) | set(theirs))
    cells = tuple(Cell(k, mine.get(k), theirs.get(k), _interval(mine, k)) for k in keys)
    return Comparison(cells, dict(tolerances), exact)


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
    text, described = read_at_revision(spec, metrics_path)
    try:
        return json.loads(text), described
    except ValueError as exc:
        raise CompareError(f"{described}: not valid JSON: {exc}") from None


def read_at_revision(spec: str, path: Path) -> tuple[str, str]:
    """(text, description) of `path` (a file of this working tree) as git revision `spec` holds it."""
    absolute = Path(path).resolve()
    anchor = next(folder for folder in absolute.parents if folder.is_dir())  # the file may be absent here
    top = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"], cwd=anchor, capture_output=True, text=True, check=False
    )
    if top.returncode != 0:
        raise CompareError(f"reference {spec!r}: not a file, and {path} is not inside a git repository")
    relative = absolute.relative_to(Path(top.stdout.strip()).resolve()).as_posix()
    shown = subprocess.run(
        ["git", "show", f"{spec}:{relative}"],
        cwd=anchor,
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=False,
    )
    if shown.returncode != 0:
        raise CompareError(
            f"reference {spec!r}: neither a file nor a git revision holding {relative} ({shown.stderr.strip()})"
        )
    return shown.stdout, f"{relative} at git revision {spec}"


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


def _table(title: str, cells: list[Cell], show: int) -> list[str]:
    lines = [
        f"\n{title}:",
        f"  {'dataset':40s} {'method':10s} {'metric':14s} {'yours':>10s} {'reference':>10s} {'delta':>10s}"
        f"  {'your interval':>21s}",
    ]
    for cell in cells[:show]:
        dataset, method, metric = cell.key
        delta = "" if cell.delta is None else f"{cell.delta:+.2e}"
        bounds = "" if cell.interval is None else f"[{cell.interval[0]:.4f}, {cell.interval[1]:.4f}]"
        lines.append(
            f"  {dataset:40s} {method:10s} {metric:14s} {_value(cell.ours):>10s} "
            f"{_value(cell.reference):>10s} {delta:>10s}  {bounds:>21s}"
        )
    if len(cells) > show:
        lines.append(f"  ... and {len(cells) - show} more")
    return lines


def format_comparison(comparison: Comparison, reference: str, *, show: int = 40) -> str:
    """A human summary: how the cells were judged, counts, then the failing and the missing cells (at most
    `show` each)."""
    judged = comparison.judged()
    both = [c for c in judged if c.ours is not None and c.reference is not None]
    beyond, missing, extra = comparison.beyond(), comparison.missing(), comparison.extra()
    with_interval, outside = comparison.with_interval(), comparison.outside()
    tolerances = ", ".join(f"{k if k != '*' else 'any metric'} {v:g}" for k, v in comparison.tolerances.items())
    if comparison.exact:
        rule = f"every number within the absolute tolerance ({tolerances}), interval bounds included"
    else:
        rule = f"reference inside your interval where you have one, else within the tolerance ({tolerances})"
    lines = [
        f"reference: {reference}",
        f"a cell is reproduced when: {rule}",
        f"{len(both)} cells on both sides: {comparison.identical()} identical, "
        f"{len(both) - len(beyond)} within tolerance, {len(beyond)} beyond",
    ]
    if with_interval:
        lines.append(
            f"{len(with_interval) - len(outside)} of {len(with_interval)} reference values lie inside your "
            f"intervals, {len(outside)} outside"
        )
    if missing:
        lines.append(f"{len(missing)} reference cells missing from yours")
    if extra:
        lines.append(f"{len(extra)} cells of yours not in the reference (not judged)")
    failing = comparison.failing()
    title = "beyond tolerance" if comparison.exact else "not reproduced (outside your interval, or beyond tolerance)"
    for heading, cells in ((title, failing), ("missing from yours", missing)):
        if cells:
            lines += _table(heading, cells, show)
    lines.append("\nREPRODUCED" if comparison.reproduced else "\nNOT REPRODUCED")
    return "\n".join(lines)
