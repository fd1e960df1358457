"""How long a bill takes on a machine of N cores: the larger of its work spread over the cores and its longest
chain of stages (each stage as wide as its processes can use). An estimate, not a bound: each stage is priced with
a cold process's imports, which warm workers save, while DVC's bookkeeping between stages (2.5-5 s a stage) and
stages waiting for a free core are not priced (docs/benchmarks.md compares it with measured runs)."""

from __future__ import annotations

from miad.plan.estimate import Estimate


def stage_hours(row: Estimate, cores: int) -> float:
    """Wall hours of one stage given `cores`: its core-hours over the cores its tasks can use."""
    width = cores if row.threads is None else min(cores, row.threads)
    return row.core_hours / width


def longest_chain_hours(rows: list[Estimate], cores: int) -> float:
    """The longest path through the stage graph (`Estimate.after`), in wall hours on `cores`."""
    by_name = {row.stage: row for row in rows}
    finish: dict[str, float] = {}

    def finished(name: str) -> float:
        if name not in finish:
            row = by_name[name]
            start = max((finished(up) for up in row.after if up in by_name), default=0.0)
            finish[name] = start + stage_hours(row, cores)
        return finish[name]

    return max((finished(row.stage) for row in rows), default=0.0)


def wall_hours(rows: list[Estimate], cores: int) -> float:
    """About this many hours on `cores` cores: max(core-hours / cores, the longest chain)."""
    if cores < 1:
        raise ValueError(f"cores: expected at least 1, got {cores}")
    return max(sum(row.core_hours for row in rows) / cores, longest_chain_hours(rows, cores))
