"""The report stage: collect evaluation runs into Tables 3-4, metrics.json and Figure 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from miad.atomic import write_json_atomic, write_text_atomic
from miad.catalog import RENDERABLE, SCENARIOS
from miad.config import Params
from miad.data.layout import dataset_key
from miad.reporting import figures, tables


def run_path(runs: Path, method: str, variant: str, scenario: str) -> Path:
    return Path(runs) / method / variant / f"{scenario}.json"


def collect_results(params: Params, runs: Path, variant: str = "main") -> dict[str, dict[str, dict[str, float]]]:
    """{dataset key: {method: metrics}} for every (method, scenario) of params; a missing run is an error."""
    results: dict[str, dict[str, dict[str, float]]] = {}
    for scenario in params.scenarios:
        for method in params.methods:
            path = run_path(runs, method, variant, scenario)
            if not path.is_file():
                raise FileNotFoundError(f"{path}: evaluation result missing; run `dvc repro` (evaluate stage)")
            run = json.loads(path.read_text(encoding="utf-8"))
            results.setdefault(dataset_key(variant, scenario), {})[method] = run["metrics"]
    return results


def notes(params: Params, runs: Path) -> list[str]:
    """Footnotes: profile, backbones replaced in this profile, scenarios not rendered yet."""
    lines = [f"Profile `{params.profile}`: {params.active.render.resolution}px renders, "
             f"{params.active.render.n_train} train / {params.active.render.n_test_good} good / "
             f"{params.active.render.n_test_defective} defective test images per scenario "
             "(the paper: 512px, 10000 / 2500 / 2500)."]
    pc = params.active.train.patchcore
    if pc.backbone != "wide_resnet50_2":
        lines.append(f"PatchCore uses `{pc.backbone}` here; the paper used wide_resnet50_2.")
    missing = [SCENARIOS[s].title for s in SCENARIOS if s not in RENDERABLE]
    if missing:
        lines.append(f"Not rendered yet: {', '.join(missing)}.")
    return lines


def build_report(params: Params, runs: Path, renders: Path, out: Path) -> dict[str, Any]:
    """Write results/tables/*, results/metrics.json and results/figures/*; return the metrics."""
    results = collect_results(params, runs)
    footnotes = notes(params, runs)
    for name, metrics in (("table3", ("image_auroc", "recall_at_fpr")), ("table4", ("aupro",))):
        table = tables.main_table(name, results, metrics)
        write_text_atomic(out / "tables" / f"{name}.md", tables.to_markdown(table, footnotes))
        write_text_atomic(out / "tables" / f"{name}.csv", tables.to_csv(table))
        write_text_atomic(out / "tables" / f"{name}.tex", tables.to_latex(table))
    write_json_atomic(out / "metrics.json", results)
    figures.sample_grid(renders, "main", params.scenarios, params.active.report.figure_samples,
                        out / "figures" / "figure2_samples.png")
    return results
