"""`miad compare`: "did I reproduce it?" Your results/metrics.json against a reference, cell by cell.

The reference is a metrics file or a git revision (the committed results/metrics.json by default), read like
`dvc metrics diff` reads it; unlike that, every cell is judged, cells missing on either side are named, and the
verdict is an exit status a script can use. Two verdicts are made and printed; one decides:

- bitwise (decides with `exact`): every number identical, interval bounds and seed spreads included (or within
  `--tolerance`, 0 by default). The test for "the same bytes on every machine".
- statistical (decides by default): each metric cell is a statistic of the test images and is judged as one.

The statistical rule. A metric cell (not the derived `<metric>_ci_low`, `_ci_high`, `_seed_std` numbers, nor
fidelity's `paper_inside_interval` count) has a bootstrap interval at confidence c (params.yaml's
`<profile>.evaluate.confidence`, 0.95 by default). Read as a normal sampling distribution it gives a standard
error se = (high - low) / (2 z), z = z_{(1+c)/2} (1.96 at 95%); for skewed percentile intervals near 0 or 1 this
is an approximation. If ours and the reference are two independent estimates of the same quantity, their
difference has variance se_ours^2 + se_ref^2, about twice either one: the reference falls outside OUR 95%
interval with probability P(|Z| > 1.96 / sqrt 2), about 17%, not 5%. So where both files have the interval a cell
is outside when |z| > z_{(1+c)/2} for z = (ours - ref) / sqrt(se_ours^2 + se_ref^2): probability 1 - c when both
runs draw from one distribution. Where only one side has an interval, the cell is outside when the other side's
value lies outside it: right for a reference free of test-set noise (the paper's value read as the truth), strict
for a reference that is itself a run (about 17% outside at 95% then). Cells with no interval on either side (an
older metrics file; fidelity's `cells`) cannot be judged statistically and must agree within the tolerance, as
must a value that is NaN on one side only.

The count. With n cells judged by an interval, each outside with probability 1 - c, k outside cells are compared
with Binomial(n, 1 - c): the one-sided p-value P(X >= k) below alpha (0.05) means more cells outside than the
confidence level allows, "NOT REPRODUCED"; otherwise "REPRODUCED (statistically)". At 299 cells and 95%, 14
outside give p = 0.64, 22 give p = 0.047. Cells share test images (every metric of one method on one split; every
method on a split sees the same resamples; Table 7's 100% row repeats the main cells), so outside events are
positively correlated: the count keeps its mean n (1 - c) but spreads more than a binomial, and the binomial
p-value comes out too small. The test therefore errs towards NOT REPRODUCED: a pass can be trusted, a narrow failure
(p just below alpha) can be a false alarm more often than alpha. A systematic shift (a changed library, params,
a GPU) moves many cells the same way, so the outside cells above and below the reference, and the sign of every
judged difference, are counted too: a strong imbalance points to a shift even when the count passes.

The count ignores how far out a cell lies: one cell at z = 50 is not chance, however many cells are within. So
the verdict also fails when any judged cell has |z| beyond z_{1 - alpha / (2 n)}, the level that one of n cells
exceeds by chance with probability at most alpha (Bonferroni; 3.76 for 299 cells at alpha 0.05; valid, if
conservative, under the correlation above). Both tests at alpha: a true reproduction of independent cells fails
one of them with probability at most about 2 alpha.

What the intervals measure: test-set noise. Two runs on the same renders share their test images, so their
difference comes from training (thread counts, GPU kernels, library versions) while the test-set noise largely
cancels: such a difference passes unless it is about as large as the test-set noise. The rule asks "within the
noise at which the paper's numbers are read?", not "within training noise" (`_seed_std`, where several training
seeds ran, shows that). Missing cells fail both verdicts; cells only you have are listed, not judged. The exit
status of `miad compare` is 0 when the deciding verdict holds, 1 when not, 2 when a file cannot be read.
"""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

from miad.errors import MiadError

DEFAULT_TOLERANCE = 0.0  # absolute; the bitwise verdict: the same bytes give 0
DEFAULT_CONFIDENCE = 0.95  # of the intervals, when params.yaml does not say
DEFAULT_ALPHA = 0.05  # of the binomial test of the count of outside cells
DERIVED_SUFFIXES = ("_ci_low", "_ci_high", "_seed_std")  # numbers about a metric, not metrics themselves
DERIVED_NAMES = ("paper_inside_interval",)  # fidelity's count of cells whose paper value is inside our interval

BOTH, OURS, THEIRS = "both intervals", "your interval", "reference's interval"  # what judged a cell


def is_derived(metric: str) -> bool:
    """True for `<metric>_ci_low`, `_ci_high`, `_seed_std` and fidelity's `paper_inside_interval` (a function of
    the intervals): judged only by the bitwise verdict."""
    return metric.endswith(DERIVED_SUFFIXES) or metric in DERIVED_NAMES


class CompareError(MiadError, ValueError):
    """A reference or metrics file that cannot be read, or a bad option; the message names it."""


CellKey = tuple[str, str, str]  # (dataset, method, metric), e.g. ("main/electrical_insulator", "rd", "image_auroc")
Interval = tuple[float, float]


@dataclass(frozen=True)
class Cell:
    """One number of one method on one dataset, ours beside the reference's, with both intervals where known."""

    key: CellKey
    ours: float | None  # None: we have no such cell
    reference: float | None  # None: the reference has no such cell
    interval: Interval | None = None  # our bootstrap interval of this metric, where metrics.json has it
    reference_interval: Interval | None = None  # the reference's

    @property
    def delta(self) -> float | None:
        if self.ours is None or self.reference is None:
            return None
        if math.isnan(self.ours) and math.isnan(self.reference):
            return 0.0
        return self.ours - self.reference

    @property
    def identical(self) -> bool:
        return self.delta == 0.0


def z_critical(confidence: float) -> float:
    """z_{(1+c)/2}: half an interval's width in standard errors (1.96 at 0.95)."""
    return NormalDist().inv_cdf((1.0 + confidence) / 2.0)


def standard_error(bounds: Interval, confidence: float) -> float:
    """The standard error a normal sampling distribution with this interval would have."""
    return (bounds[1] - bounds[0]) / (2.0 * z_critical(confidence))


@dataclass(frozen=True)
class Judgement:
    """A metric cell judged by an interval."""

    cell: Cell
    rule: str  # BOTH, OURS or THEIRS
    z: float  # (ours - reference) / the standard error the rule uses; +-inf where that is 0 and the values differ
    outside: bool


def _z(delta: float, se: float) -> float:
    if delta == 0.0:
        return 0.0
    return delta / se if se > 0 else math.copysign(math.inf, delta)


def judge(cell: Cell, confidence: float) -> Judgement | None:
    """The cell judged at `confidence`; None without values on both sides, with NaN, or without any interval."""
    if cell.ours is None or cell.reference is None or math.isnan(cell.ours) or math.isnan(cell.reference):
        return None
    delta = cell.ours - cell.reference
    if cell.interval is not None and cell.reference_interval is not None:
        se = math.hypot(standard_error(cell.interval, confidence), standard_error(cell.reference_interval, confidence))
        z = _z(delta, se)
        return Judgement(cell, BOTH, z, abs(z) > z_critical(confidence))
    if cell.interval is not None:  # the reference read as free of test-set noise
        low, high = cell.interval
        z = _z(delta, standard_error(cell.interval, confidence))
        return Judgement(cell, OURS, z, not low <= cell.reference <= high)
    if cell.reference_interval is not None:
        low, high = cell.reference_interval
        z = _z(delta, standard_error(cell.reference_interval, confidence))
        return Judgement(cell, THEIRS, z, not low <= cell.ours <= high)
    return None


@dataclass(frozen=True)
class Statistical:
    """The statistical verdict: how many judged cells lie outside, against what the confidence level allows."""

    judgements: tuple[Judgement, ...]  # metric cells judged by an interval
    confidence: float
    alpha: float
    unjudgeable: tuple[Cell, ...]  # metric cells without any interval (or NaN on one side) that differ
    missing: tuple[Cell, ...]  # reference numbers we lack

    @property
    def outside(self) -> list[Judgement]:
        return [j for j in self.judgements if j.outside]

    @property
    def expected(self) -> float:
        return len(self.judgements) * (1.0 - self.confidence)

    @property
    def p_value(self) -> float:
        """One-sided binomial P(X >= outside) for X ~ Binomial(judged, 1 - confidence)."""
        if not self.judgements:
            return 1.0
        from scipy.stats import binomtest

        return float(binomtest(len(self.outside), len(self.judgements), 1.0 - self.confidence, "greater").pvalue)

    def signs(self, judgements: list[Judgement]) -> tuple[int, int]:
        """(yours above the reference, yours below) among `judgements`."""
        deltas = [j.cell.delta or 0.0 for j in judgements]
        return sum(d > 0 for d in deltas), sum(d < 0 for d in deltas)

    @property
    def z_extreme(self) -> float:
        """The |z| that any of the judged cells exceeds by chance with probability at most alpha (Bonferroni)."""
        return NormalDist().inv_cdf(1.0 - self.alpha / (2.0 * max(1, len(self.judgements))))

    @property
    def extreme(self) -> list[Judgement]:
        return [j for j in self.judgements if abs(j.z) > self.z_extreme]

    @property
    def holds(self) -> bool:
        return not self.missing and not self.unjudgeable and not self.extreme and self.p_value >= self.alpha


@dataclass(frozen=True)
class Comparison:
    """Every cell of both files, and how to judge them."""

    cells: tuple[Cell, ...]
    tolerances: Mapping[str, float]  # metric name -> absolute tolerance; "*" for the others
    exact: bool = False  # the bitwise verdict decides (else the statistical one)
    confidence: float = DEFAULT_CONFIDENCE
    alpha: float = DEFAULT_ALPHA

    def tolerance(self, metric: str) -> float:
        return self.tolerances.get(metric, self.tolerances.get("*", DEFAULT_TOLERANCE))

    @property
    def bitwise_name(self) -> str:
        return "bitwise" if not any(self.tolerances.values()) else "within tolerance"

    def _differs(self, cell: Cell) -> bool:
        delta = cell.delta
        return delta is not None and not abs(delta) <= self.tolerance(cell.key[2])

    def differing(self) -> list[Cell]:
        """Numbers on both sides (derived ones included) that differ beyond the tolerance (NaN on one side does)."""
        return [c for c in self.cells if self._differs(c)]

    def missing(self) -> list[Cell]:
        return [c for c in self.cells if c.ours is None]

    def extra(self) -> list[Cell]:
        return [c for c in self.cells if c.reference is None]

    def identical(self) -> int:
        return sum(c.identical for c in self.cells)

    @property
    def bitwise(self) -> bool:
        return not self.differing() and not self.missing()

    def metric_cells(self) -> list[Cell]:
        return [c for c in self.cells if not is_derived(c.key[2])]

    def statistical(self) -> Statistical:
        judgements, unjudgeable = [], []
        for cell in self.metric_cells():
            judgement = judge(cell, self.confidence)
            if judgement is not None:
                judgements.append(judgement)
            elif self._differs(cell):
                unjudgeable.append(cell)
        missing = tuple(self.missing())  # an interval bound or seed spread too: the files were made differently
        return Statistical(tuple(judgements), self.confidence, self.alpha, tuple(unjudgeable), missing)

    @property
    def reproduced(self) -> bool:
        return self.bitwise if self.exact else self.statistical().holds


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


def _interval(cells: Mapping[CellKey, float], key: CellKey) -> Interval | None:
    dataset, method, metric = key
    low, high = cells.get((dataset, method, f"{metric}_ci_low")), cells.get((dataset, method, f"{metric}_ci_high"))
    if low is None or high is None or is_derived(metric) or not math.isfinite(low) or not math.isfinite(high):
        return None
    return low, high


def check_level(value: float, option: str) -> float:
    """A confidence or alpha: a number strictly between 0 and 1."""
    if not 0.0 < value < 1.0:
        raise CompareError(f"{option} {value!r}: expected a number strictly between 0 and 1")
    return value


def compare_metrics(
    ours: Mapping[str, object],
    reference: Mapping[str, object],
    tolerances: Mapping[str, float],
    *,
    exact: bool = False,
    confidence: float = DEFAULT_CONFIDENCE,
    alpha: float = DEFAULT_ALPHA,
    sources=("", ""),
) -> Comparison:
    """Pair every cell of `ours` with the reference's, each with its interval where its file has one."""
    mine, theirs = flatten(ours, sources[0] or "ours"), flatten(reference, sources[1] or "reference")
    keys = sorted(set(mine) | set(theirs))
    cells = tuple(Cell(k, mine.get(k), theirs.get(k), _interval(mine, k), _interval(theirs, k)) for k in keys)
    return Comparison(
        cells, dict(tolerances), exact, check_level(confidence, "--confidence"), check_level(alpha, "--alpha")
    )


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


PROFILE_RESULTS = {"findings": Path("results/findings")}  # profiles whose committed numbers have a folder of their own


def committed_paths(
    params_path: Path, profile: str | None, metrics_path: Path = Path("results/metrics.json")
) -> tuple[Path, Path]:
    """(the metrics file whose git copy is the default reference, the default digests folder) for the active profile
    (`profile`, else the params file's): the findings profile's committed run lives in results/findings/, every other
    profile is compared with the committed results/metrics.json (or `metrics_path`) and results/reference/."""
    if profile is None and params_path.is_file():
        from miad.config import load_params

        profile = load_params(params_path).profile
    folder = PROFILE_RESULTS.get(profile or "")
    if folder is None:
        return metrics_path, Path("results/reference")
    return folder / "metrics.json", folder / "reference"


def read_confidence(option: float | None, params_path: Path, profile: str | None = None) -> tuple[float, str]:
    """(confidence of the intervals, where it came from): the option, else the params file's active profile (or
    `profile`), else DEFAULT_CONFIDENCE."""
    if option is not None:
        return check_level(option, "--confidence"), "--confidence"
    if not params_path.is_file():
        return DEFAULT_CONFIDENCE, f"the default (no {params_path})"
    from miad.config import load_params

    params = load_params(params_path, profile)
    return params.active.evaluate.confidence, f"{params_path}: {params.profile}.evaluate.confidence"


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


def _bounds(bounds: Interval | None) -> str:
    return "—" if bounds is None else f"[{bounds[0]:.4f}, {bounds[1]:.4f}]"


def _table(title: str, rows: list[tuple[Cell, str]], show: int) -> list[str]:
    """Cells with a last column of their own (z, or nothing)."""
    lines = [
        f"\n{title}:",
        f"  {'dataset':40s} {'method':10s} {'metric':22s} {'yours':>10s} {'reference':>10s} {'delta':>10s}"
        f" {'z':>7s}  {'your interval':>18s}  {'reference interval':>18s}",
    ]
    for cell, z in rows[:show]:
        dataset, method, metric = cell.key
        delta = "" if cell.delta is None else f"{cell.delta:+.2e}"
        lines.append(
            f"  {dataset:40s} {method:10s} {metric:22s} {_value(cell.ours):>10s} {_value(cell.reference):>10s} "
            f"{delta:>10s} {z:>7s}  {_bounds(cell.interval):>18s}  {_bounds(cell.reference_interval):>18s}"
        )
    if len(rows) > show:
        lines.append(f"  ... and {len(rows) - show} more")
    return lines


def _verdict(holds: bool, how: str) -> str:
    return f"REPRODUCED ({how})" if holds else "NOT REPRODUCED"


def format_comparison(comparison: Comparison, reference: str, *, show: int = 40, confidence_source: str = "") -> str:
    """A human summary: which rule decides, both verdicts with their counts, then the cells behind them (at most
    `show` per table), and the deciding verdict last."""
    stats, c = comparison.statistical(), comparison.confidence
    tolerances = ", ".join(f"{k if k != '*' else 'any number'} {v:g}" for k, v in comparison.tolerances.items())
    differing, missing, extra = comparison.differing(), comparison.missing(), comparison.extra()
    both = [x for x in comparison.cells if x.ours is not None and x.reference is not None]
    outside, judged = sorted(stats.outside, key=lambda j: -abs(j.z)), list(stats.judgements)
    rules = {rule: sum(j.rule == rule for j in judged) for rule in (BOTH, OURS, THEIRS)}
    above, below = stats.signs(outside)
    higher, lower = stats.signs(judged)
    decides = (
        "the bitwise verdict (--exact)"
        if comparison.exact
        else "the statistical verdict (the default; --exact decides by the bitwise one)"
    )
    lines = [
        f"reference: {reference}",
        f"decided by: {decides}",
        f"\n{comparison.bitwise_name}: {_verdict(comparison.bitwise, comparison.bitwise_name)}",
        f"  {len(both)} numbers on both sides (interval bounds included): {comparison.identical()} identical, "
        f"{len(differing)} differ beyond the tolerance ({tolerances})",
        f"\nstatistical: {_verdict(stats.holds, 'statistically')}",
        f"  {len(outside)} of {len(judged)} metric cells outside at {c:g} confidence (|z| > {z_critical(c):.3f}); "
        f"expected {stats.expected:.2f} = {len(judged)} x {1 - c:.3g}; one-sided binomial p = {stats.p_value:.3g} "
        f"({'not ' if stats.p_value >= comparison.alpha else ''}below alpha {comparison.alpha:g})",
        f"  confidence from {confidence_source or 'the caller'}; judged by "
        + (", ".join(f"{rule}: {count}" for rule, count in rules.items() if count) or "no interval: none")
        + (" (one interval: strict where the other value is itself noisy)" if rules[OURS] + rules[THEIRS] else ""),
        f"  largest |z|: {max((abs(j.z) for j in judged), default=0.0):.2f}; {len(stats.extreme)} cells beyond "
        f"{stats.z_extreme:.2f}, which one of {len(judged)} cells exceeds by chance with probability at most alpha",
        f"  outside cells: yours above the reference in {above}, below in {below}; all judged cells: yours higher "
        f"in {higher}, lower in {lower}, equal in {len(judged) - higher - lower} (an imbalance points to a shift)",
        "  cells share test images, so outside cells come in correlated groups: the binomial count errs towards "
        "NOT REPRODUCED",
    ]
    if stats.unjudgeable:
        lines.append(f"  {len(stats.unjudgeable)} metric cells without any interval (or NaN on one side) differ")
    if missing:
        lines.append(f"\n{len(missing)} reference numbers missing from yours: both verdicts fail")
    if extra:
        lines.append(f"\n{len(extra)} numbers of yours not in the reference (listed, not judged)")
    tables = [
        (f"outside at {c:g} confidence, largest |z| first", [(j.cell, f"{j.z:+.2f}") for j in outside]),
        ("without an interval, beyond the tolerance", [(x, "") for x in stats.unjudgeable]),
        ("missing from yours", [(x, "") for x in missing]),
        ("yours only (not judged)", [(x, "") for x in extra]),
    ]
    if comparison.exact:
        tables.insert(0, ("differ beyond the tolerance", [(x, "") for x in differing]))
    for title, rows in tables:
        if rows:
            lines += _table(title, rows, show)
    if comparison.exact:
        lines.append("\n" + _verdict(comparison.bitwise, comparison.bitwise_name))
    else:
        lines.append("\n" + _verdict(stats.holds, "statistically"))
    return "\n".join(lines)
