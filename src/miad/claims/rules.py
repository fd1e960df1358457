"""The rules that turn an effect's bootstrap replicates into a verdict, and compound verdicts out of parts.

A part is one comparison: an effect (for example baseline AUROC minus +UV AUROC of one method) with its
replicates, and the side of a bound the finding puts it on. The part *holds* when the percentile interval of its
replicates lies entirely on the claimed side, is *contradicted* when it lies entirely on the other side, and is
*undecided* when the interval straddles the bound (or there is no data).

Compound findings ("most methods", "every scenario", "without exception") combine their parts by counting:

- `all`: holds when every part holds; contradicted when any part is contradicted;
- `majority` (strictly more than half): holds when more than half the parts hold; contradicted when so many parts
  are contradicted (at least half) that a majority can no longer hold, whatever the undecided ones turn out;
- `any` (at least one): holds when some part holds; contradicted when every part is contradicted.

Multiple comparisons: every part of a finding is decided at the Bonferroni-adjusted confidence 1 - (1 - c) / k
for its k parts (`bonferroni`). Then, whatever the combination, the chance that any part's verdict is wrong is at
most 1 - c, so the compound verdict is made at confidence c. Bonferroni is conservative (more undecided parts),
which errs in the safe direction for a reproduction: we neither confirm nor refute a finding we cannot back. The
finding's headline effect (a mean over its parts) keeps the unadjusted confidence c. At k parts and R replicates
the adjusted interval reaches the replicates' extremes when R (1 - c) / (2 k) < 1; `compare` says so in the detail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from miad.bootstrap import interval

HOLDS, CONTRADICTED, UNDECIDED = "holds", "contradicted", "undecided"
VERDICTS = (HOLDS, CONTRADICTED, UNDECIDED)
COMBINATIONS = ("all", "majority", "any")
NO_DATA = "no data"


@dataclass(frozen=True)
class Verdict:
    """A finding's (or one part's) verdict: the effect, its interval, and what decided it."""

    verdict: str  # holds | contradicted | undecided
    effect: float | None  # the point effect (None without data)
    interval: tuple[float, float] | None  # its bootstrap interval at the confidence it was decided at
    detail: str  # how it was decided, in words
    label: str = ""  # which part (empty for a finding)
    finding: str = ""  # the finding's id (set by miad.claims.decide)
    parts: tuple[Verdict, ...] = ()  # a compound verdict's parts
    confidence: float | None = None  # the confidence of `interval`
    data: bool = True  # False: no cells to decide it from (a compound: none of its parts has any)

    def leaves(self) -> list[Verdict]:
        """The single comparisons under this verdict, depth first."""
        return [self] if not self.parts else [leaf for part in self.parts for leaf in part.leaves()]


@dataclass(frozen=True)
class Bound:
    """The claimed side: effect > above, effect < below, or both (inside the band (above, below))."""

    above: float | None = None
    below: float | None = None

    def __post_init__(self) -> None:
        if self.above is None and self.below is None:
            raise ValueError("a bound needs `above`, `below` or both")
        if self.above is not None and self.below is not None and not self.above < self.below:
            raise ValueError(f"empty band ({self.above}, {self.below})")

    def text(self) -> str:
        if self.above is not None and self.below is not None:
            return f"in ({self.above:g}, {self.below:g})"
        return f"> {self.above:g}" if self.above is not None else f"< {self.below:g}"

    def side(self, low: float, high: float) -> str:
        """The verdict of an interval [low, high] against this bound."""
        inside_above = self.above is None or low > self.above
        inside_below = self.below is None or high < self.below
        if inside_above and inside_below:
            return HOLDS
        outside = (self.above is not None and high <= self.above) or (self.below is not None and low >= self.below)
        return CONTRADICTED if outside else UNDECIDED


def bonferroni(confidence: float, parts: int) -> float:
    """The per-part confidence that keeps a family of `parts` comparisons at `confidence`."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return 1.0 - (1.0 - confidence) / max(parts, 1)


def no_data(label: str, what: str = "") -> Verdict:
    """An undecided part or finding for want of cells."""
    return Verdict(UNDECIDED, None, None, f"{NO_DATA}{': ' + what if what else ''}", label, data=False)


def compare(
    label: str, point: float, replicates: np.ndarray, bound: Bound, confidence: float, note: str = ""
) -> Verdict:
    """One comparison: the percentile interval of `replicates` (the effect's bootstrap) against `bound`."""
    reps = np.asarray(replicates, dtype=np.float64)
    if reps.size == 0 or not np.isfinite(reps).all() or not np.isfinite(point):
        return Verdict(UNDECIDED, None if not np.isfinite(point) else float(point), None, "no finite replicates", label)
    low, high = interval(reps, confidence)
    verdict = bound.side(low, high)
    detail = f"effect {bound.text()}"
    if reps.size > 1 and reps.size * (1.0 - confidence) / 2.0 < 1.0:
        detail += f"; {reps.size} replicates reach only {1 - 2 / reps.size:.4f} confidence: interval at the extremes"
    if note:
        detail += f"; {note}"
    return Verdict(verdict, float(point), (low, high), detail, label, confidence=confidence)


def combine(label: str, how: str, parts: Sequence[Verdict], *, effect: Verdict | None = None) -> Verdict:
    """A compound verdict from `parts` combined `how` (all | majority | any); `effect` gives its headline effect
    and interval (for example the mean drop over the parts), else the compound has none."""
    if how not in COMBINATIONS:
        raise ValueError(f"unknown combination {how!r}; expected one of {COMBINATIONS}")
    counts = {v: sum(p.verdict == v for p in parts) for v in VERDICTS}
    n, held, against = len(parts), counts[HOLDS], counts[CONTRADICTED]
    missing = sum(not p.data for p in parts)
    if n == 0 or missing == n:
        verdict = UNDECIDED
    elif how == "all":
        verdict = CONTRADICTED if against else HOLDS if held == n else UNDECIDED
    elif how == "majority":
        verdict = HOLDS if 2 * held > n else CONTRADICTED if 2 * against >= n else UNDECIDED
    else:  # any
        verdict = HOLDS if held else CONTRADICTED if against == n else UNDECIDED
    words = {"all": "every part must hold", "majority": "more than half must hold", "any": "one part must hold"}
    detail = f"{held} of {n} hold, {against} contradicted, {counts[UNDECIDED]} undecided ({words[how]})"
    if n == 0 or missing == n:
        detail = f"{NO_DATA}: " + (", ".join(p.label for p in parts) or "no cells")
    elif missing:
        detail += f"; {NO_DATA} for {missing}: " + ", ".join(p.label for p in parts if not p.data)
    point = None if effect is None else effect.effect
    bounds = None if effect is None else effect.interval
    confidence = None if effect is None else effect.confidence
    data = n > 0 and missing < n
    return Verdict(verdict, point, bounds, detail, label, parts=tuple(parts), confidence=confidence, data=data)


def summary_line(verdicts: Sequence[Verdict], size: str = "") -> str:
    """'K of N findings hold, M contradicted, U undecided at this size'."""
    held = sum(v.verdict == HOLDS for v in verdicts)
    against = sum(v.verdict == CONTRADICTED for v in verdicts)
    open_ = sum(v.verdict == UNDECIDED for v in verdicts)
    where = f" at this size ({size})" if size else " at this size"
    return f"{held} of {len(verdicts)} findings hold, {against} contradicted, {open_} undecided{where}"
