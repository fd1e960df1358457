"""The rehearsal's params: the paper profile as it is, with image counts and epochs shrunk, on the CPU."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from miad.rehearsal import RehearsalError

EPOCH_FIELDS = ("epochs",)  # per method: shrunk to 1
SCHEDULE_FIELDS = {"draem": {"lr_milestones": []}, "uniad": {"lr_drop_epoch": 1}}  # schedules of a 1-epoch run


@dataclass(frozen=True)
class Shrink:
    """What the rehearsal changes in the paper profile (everything else stays as params.yaml has it)."""

    n_train: int = 4  # images per split; at least 2 so that Table 7's prefixes and BatchNorm have data
    n_test_good: int = 2
    n_test_defective: int = 2
    epochs: int = 1
    scenarios: tuple[str, ...] = ()  # empty: every scenario params.yaml lists
    methods: tuple[str, ...] = ()  # empty: every method (per-scenario and unified)
    variants: tuple[str, ...] = ()  # ablation variants (Tables 5, 6); empty: every variant params.yaml lists
    samples: int = 0  # Cycles samples per pixel; 0: the paper's (only for a quick subset on a slow machine)
    threads: int = 0  # numeric threads; 0: this machine's core count


def _keep(values: Sequence[str], allowed: Sequence[str]) -> list[str]:
    return [v for v in values if not allowed or v in allowed]


def rehearsal_params(data: dict[str, Any], shrink: Shrink) -> dict[str, Any]:
    """A copy of params.yaml's `data` set to the shrunk paper profile; raises ValueError naming a bad choice."""
    out = {**data, "profile": "paper"}
    paper = {**data["paper"]}
    unknown = sorted(set(shrink.scenarios) - set(data["scenarios"]))
    if unknown:
        raise RehearsalError(f"scenarios {unknown} are not in params.yaml's scenarios {data['scenarios']}")
    every_method = [*data["methods"], *data["unified_methods"]]
    unknown = sorted(set(shrink.methods) - set(every_method))
    if unknown:
        raise RehearsalError(f"methods {unknown} are not in params.yaml's methods {every_method}")
    variants = data["ablation"]["variants"]
    unknown = sorted(set(shrink.variants) - set(variants))
    if unknown:
        raise RehearsalError(f"variants {unknown} are not in params.yaml's ablation.variants {variants}")
    if min(shrink.n_train, shrink.n_test_good, shrink.n_test_defective, shrink.epochs) < 1 or shrink.samples < 0:
        raise RehearsalError(f"image counts and epochs must be at least 1 (samples at least 0), got {shrink}")
    paper["render"] = {
        **paper["render"],
        "n_train": shrink.n_train,
        "n_test_good": shrink.n_test_good,
        "n_test_defective": shrink.n_test_defective,
        "device": "cpu",
        **({"samples": shrink.samples} if shrink.samples else {}),
    }
    paper["numeric"] = {**paper["numeric"], "threads": shrink.threads or os.cpu_count() or 1}
    train = {**paper["train"], "device": "cpu"}
    for method, config in train.items():
        if isinstance(config, dict):
            train[method] = {**config, **{k: shrink.epochs for k in EPOCH_FIELDS if k in config}}
            train[method].update(SCHEDULE_FIELDS.get(method, {}))
    paper["train"] = train
    out["paper"] = paper
    scenarios = _keep(data["scenarios"], shrink.scenarios)
    out["scenarios"] = scenarios
    out["methods"] = _keep(data["methods"], shrink.methods)
    out["unified_methods"] = _keep(data["unified_methods"], shrink.methods)
    for section in ("table7", "ablation"):
        block = {**data[section]}
        block["methods"] = _keep(block["methods"], shrink.methods)
        block["scenarios"] = _keep(block["scenarios"], scenarios)
        out[section] = block
    out["ablation"]["variants"] = _keep(data["ablation"]["variants"], shrink.variants)
    return out
