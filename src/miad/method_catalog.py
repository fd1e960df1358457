"""The benchmarked methods by name: the one list of them, in the paper's column order, with their metadata.

Kept apart from miad.catalog (scenarios) so that the render stage, which depends on that module,
does not rerun when a method is added; and free of torch, so the CLI and config validation can list
the names cheaply. miad.methods registers one implementation per name listed here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MethodInfo:
    """One benchmarked method."""

    key: str  # the name params.yaml, the CLI and the registry use
    title: str  # as the paper's tables write it
    unified: bool = False  # one model for all scenarios together (else one per scenario)


METHOD_INFO: dict[str, MethodInfo] = {
    m.key: m
    for m in (
        MethodInfo("rd", "RD"),
        MethodInfo("patchcore", "PatchCore"),
        MethodInfo("fastflow", "FastFlow"),
        MethodInfo("draem", "DRAEM"),
        MethodInfo("ae", "AE"),
        MethodInfo("uniad", "UniAD", unified=True),
    )
}
METHOD_NAMES = tuple(METHOD_INFO)  # the paper's column order
TRAINABLE = METHOD_NAMES  # every listed method has its implementation in miad.methods (the registry checks it)
UNIFIED = tuple(k for k, m in METHOD_INFO.items() if m.unified)
METHOD_TITLES = {k: m.title for k, m in METHOD_INFO.items()}
