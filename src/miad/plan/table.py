"""The bill as a table (one row per dvc.yaml stage group, then the total) or as JSON (every stage)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from miad.plan.estimate import Estimate


def totals(rows: list[Estimate]) -> dict[str, Any]:
    return {
        "stages": len(rows),
        "tasks": sum(r.tasks for r in rows),
        "core_hours": sum(r.core_hours for r in rows),
        "gpu_stages": sum(r.gpu for r in rows),
        "max_memory_gb": max((r.memory_gb for r in rows), default=0.0),
        "storage_gb": sum(r.storage_gb for r in rows),
    }


def over_memory(rows: list[Estimate], limit_gb: float) -> list[Estimate]:
    """Stages whose peak memory per task exceeds `limit_gb` (the memory a Slurm task asks for)."""
    return [r for r in rows if r.memory_gb > limit_gb]


def render_table(
    rows: list[Estimate], profile: str, task_memory_gb: float | None = None, walls: dict[int, float] | None = None
) -> str:
    groups: dict[str, list[Estimate]] = defaultdict(list)
    for row in rows:
        groups[row.group].append(row)
    header = ("stage", "stages", "tasks", "CPU core-h", "on GPU", "peak mem/task", "storage", "basis")
    lines = [header]
    for group, members in groups.items():
        first = members[0]
        lines.append(
            (
                group,
                str(len(members)),
                str(sum(m.tasks for m in members)),
                f"{sum(m.core_hours for m in members):,.1f}",
                "yes" if any(m.gpu for m in members) else "no",
                f"{max(m.memory_gb for m in members):.1f} GB",
                f"{sum(m.storage_gb for m in members):,.2f} GB",
                first.basis[1] if len(first.basis) > 1 else first.basis[0],
            )
        )
    total = totals(rows)
    lines.append(
        (
            "TOTAL",
            str(total["stages"]),
            str(total["tasks"]),
            f"{total['core_hours']:,.1f}",
            f"{total['gpu_stages']} stages",
            f"{total['max_memory_gb']:.1f} GB",
            f"{total['storage_gb']:,.2f} GB",
            "",
        )
    )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    out = [f"miad plan: profile {profile}"]
    for i, line in enumerate(lines):
        cells = [cell.ljust(widths[k]) if k == 0 else cell.rjust(widths[k]) for k, cell in enumerate(line[:-1])]
        out.append("  ".join(cells) + ("  " + line[-1] if line[-1] else ""))
        if i == 0 or i == len(lines) - 2:
            out.append("  ".join("-" * w for w in widths))
    out.append(
        "Core-hours are on the benchmarked CPU (src/miad/plan/costs.yaml names it); stages marked on GPU have no GPU "
        "measurement yet, so their CPU figure is an upper bound. Storage counts the workspace once (the DVC cache "
        "holds a second copy unless it links)."
    )
    for cores, hours in (walls or {}).items():
        out.append(
            f"On {cores} cores: about {hours:,.1f} h ({hours * 60:,.0f} min) of wall-clock time: the larger of the "
            f"core-hours over {cores} cores and the longest chain of stages, each as wide as its threads."
        )
    heavy = over_memory(rows, task_memory_gb) if task_memory_gb is not None else []
    if heavy:
        names = ", ".join(f"{r.stage} ({r.memory_gb:.1f} GB)" for r in heavy)
        out.append(
            f"WARNING: {len(heavy)} stage(s) need more than executor.slurm.mem_gb = {task_memory_gb:g} GB per task: "
            f"{names}. Raise mem_gb in params.yaml before submitting them to Slurm (on a GPU the bank's share is "
            "GPU memory, but the saved bank still passes through host memory)."
        )
    return "\n".join(out)
