"""The report stage: collect evaluation runs into Tables 3-7 (each value with its uncertainty), metrics.json, the
paper's findings decided (results/tables/claims.md, metrics.json's `claims`),
Figures 2, 4 and 5, the fidelity figure (ours against the paper's), and results/report.html, the page that shows them
all."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from miad.atomic import write_json_atomic, write_text_atomic
from miad.catalog import SCENARIOS
from miad.claims.decide import decide_all
from miad.claims.output import claims_section, write_claims
from miad.config import Params
from miad.data.layout import dataset_key, manifest_path, split_dir
from miad.data.manifest import read_manifest
from miad.project import project_root
from miad.reporting import figures, tables
from miad.reporting.estimates import Estimate, flat_metrics, run_estimates
from miad.reporting.fidelity import fidelity
from miad.reporting.page import write_page
from miad.stages.train import prefix_size

PAPER_BACKBONES = {
    "rd": "wide_resnet50_2",
    "patchcore": "wide_resnet50_2",
    "fastflow": "wide_resnet50_2",
    "uniad": "efficientnet_b4",
}


def run_path(runs: Path, method: str, variant: str, scenario: str, training_seed: int = 0) -> Path:
    """Where `miad evaluate` wrote a run; extra training seeds sit beside seed 0 as `<scenario>-seed<k>.json`."""
    name = scenario if training_seed == 0 else f"{scenario}-seed{training_seed}"
    return Path(runs) / method / variant / f"{name}.json"


def size_run_path(runs: Path, method: str, scenario: str, fraction: float) -> Path:
    return Path(runs) / method / "main" / scenario / f"f{fraction}.json"


def read_run(path: Path) -> dict[str, Any]:
    """One evaluation run (metrics, bootstrap replicates, per-image scores)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: evaluation result missing; run `dvc repro` (evaluate stages)")
    return json.loads(path.read_text(encoding="utf-8"))


def read_estimates(*paths: Path) -> dict[str, Estimate]:
    """{metric: Estimate} of one cell from its runs, one per training seed."""
    return run_estimates([read_run(path) for path in paths])


# {dataset key: {method: {metric: Estimate}}}
Estimates = dict[str, dict[str, dict[str, Estimate]]]


def all_methods(params: Params) -> tuple[str, ...]:
    return (*params.methods, *params.unified_methods)


def collect_results(params: Params, runs: Path) -> Estimates:
    """{dataset key: {method: {metric: Estimate}}}: every (method, scenario) of params on `main`, averaged over
    the training seeds, and every ablation run that params.ablation lists (Tables 5 and 6); all are required."""
    results: Estimates = {}
    for scenario in params.scenarios:
        for method in all_methods(params):
            paths = [run_path(runs, method, "main", scenario, k) for k in params.training_seeds]
            results.setdefault(dataset_key("main", scenario), {})[method] = read_estimates(*paths)
    ablation = params.ablation
    for scenario in ablation.scenarios:
        for variant in ablation.variants:
            for method in ablation.methods:
                results.setdefault(dataset_key(variant, scenario), {})[method] = read_estimates(
                    run_path(runs, method, variant, scenario)
                )
    return results


def collect_size_results(params: Params, main: Estimates, size_runs: Path, renders: Path) -> dict[float, Estimates]:
    """Table 7's {fraction: {dataset key: {method: metrics}}}; the capped PatchCore is left out where the
    prefix exceeds its cap (the paper's `-`), the uncapped run fills its own column."""
    study, out = params.table7, {}
    cap = params.active.train.patchcore.max_train_images
    for scenario in study.scenarios:
        n_train = read_manifest(split_dir(renders, "main", scenario, "train")).count
        key = dataset_key("main", scenario)
        for fraction in (*study.fractions, 1.0):
            row = out.setdefault(fraction, {}).setdefault(key, {})
            for method in study.methods:
                if method == "patchcore" and cap is not None and prefix_size(n_train, fraction) > cap:
                    continue
                row[method] = (
                    main[key][method]
                    if fraction == 1.0
                    else read_estimates(size_run_path(size_runs, method, scenario, fraction))
                )
        for fraction in study.uncapped_fractions:
            row = out.setdefault(fraction, {}).setdefault(key, {})
            row[tables.UNCAPPED] = read_estimates(size_run_path(size_runs, tables.UNCAPPED, scenario, fraction))
    return out


def notes(params: Params) -> list[str]:
    """Footnotes: profile sizes, backbones replaced in this profile, scenarios not rendered yet."""
    render = params.active.render
    lines = [
        f"Profile `{params.profile}`: {render.resolution}px renders, {render.n_train} train / "
        f"{render.n_test_good} good / {render.n_test_defective} defective test images per scenario "
        "(the paper: 512px, 10000 / 2500 / 2500)."
    ]
    for method, paper_backbone in PAPER_BACKBONES.items():
        config = getattr(params.active.train, method)
        if method in all_methods(params) and config.backbone != paper_backbone:
            lines.append(f"{method}: backbone `{config.backbone}` here; the paper used {paper_backbone}.")
    if params.extra_training_seeds:
        lines.append(
            f"Main models (Tables 3 and 4, Table 7's 100% row): mean over {len(params.training_seeds)} training "
            "seeds, ±s their standard deviation, the interval that of the mean; other cells: one training seed."
        )
    missing = [SCENARIOS[s].title for s in SCENARIOS if s not in params.scenarios]
    if missing:
        lines.append(f"Not rendered in this run: {', '.join(missing)}.")
    return lines


def dataset_source(renders: Path, variant: str, scenario: str) -> str | None:
    """Where a dataset's images came from, as its test manifest records it: `rendered`, `imported from ...`, or
    None when the dataset does not exist."""
    directory = split_dir(renders, variant, scenario, "test")
    if not manifest_path(directory).is_file():
        return None
    source = read_manifest(directory).header.get("source")
    return "rendered" if not source else f"imported from {source['root']} ({source['layout']} layout)"


def source_note(renders: Path, datasets: Sequence[tuple[str, str]]) -> str:
    """The footnote that says which data a table was computed on, and what comparing with the paper means then."""
    imported, rendered = [], []
    for variant, scenario in datasets:
        source = dataset_source(renders, variant, scenario)
        name = SCENARIOS[scenario].title + ("" if variant == "main" else f" ({variant})")
        if source == "rendered":
            rendered.append(name)
        elif source is not None:
            imported.append(f"{name} {source}")
    parts = []
    if imported:
        parts.append(f"Data: {'; '.join(imported)}. On MIAD's released images the paper's value is a like-for-like "
                     "reference.")  # fmt: skip
    if rendered:
        parts.append(
            f"Data rendered by this bundle ({', '.join(rendered)}): procedural re-creations of MIAD's scenes, not the "
            "paper's images, so a cell compares trends, not the same test set."
        )
    return " ".join(parts)


def write_table(out: Path, table: tables.Table, footnotes: list[str]) -> None:
    write_text_atomic(out / "tables" / f"{table.name}.md", tables.to_markdown(table, footnotes))
    write_text_atomic(out / "tables" / f"{table.name}.csv", tables.to_csv(table))
    write_text_atomic(out / "tables" / f"{table.name}.tex", tables.to_latex(table))


def stats_table(stats: dict[str, Any]) -> str:
    """Markdown: per rendered dataset its sizes, defect pixel ratio beside the paper's, coverage and leak check."""
    lines = [
        "Dataset statistics (`miad stats`, results/dataset_stats.json): defect pixel ratio = mean over the defective"
        " test images; the paper's from Table 2; coverage = object-of-interest pixels over all test images.",
        "",
        "| dataset | factors | train | test good | test defective | defect % (ours) | defect % (paper) | ours/paper"
        " | coverage % mean (min-max) | leak-free |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, row in stats.items():
        test = row["test"]
        ratio, coverage = test["defect_pixel_ratio"], test["object_coverage"]
        good = test["per_type"].get("good", 0)
        ours = tables.MISSING if ratio is None else f"{100 * ratio['mean']:.3f}"
        versus = tables.MISSING if row["defect_ratio_vs_paper"] is None else f"{row['defect_ratio_vs_paper']:.2f}"
        covered = (  # imported datasets record no object coverage
            tables.MISSING
            if coverage is None
            else f"{100 * coverage['mean']:.1f} ({100 * coverage['min']:.1f}-{100 * coverage['max']:.1f})"
        )
        lines.append(
            f"| {key} | {'+'.join(f.upper() for f in row['factors']) or 'none'} | {row['train']['images']} | {good} "
            f"| {test['images'] - good} | {ours} | {100 * row['paper_defect_pixel_ratio']:.2f} | {versus} "
            f"| {covered} | {'yes' if row['leak_free'] else 'NO'} |"
        )
    return "\n".join(lines) + "\n"


def build_report(
    params: Params, runs: Path, size_runs: Path, maps: Path, renders: Path, out: Path, stats_path: Path | None = None
) -> dict[str, Any]:
    """Write results/tables/*, results/metrics.json, results/figures/* and results/report.html (all of them on one
    page); return the metrics."""
    results = collect_results(params, runs)
    size_results = collect_size_results(params, results, size_runs, renders)
    footnotes = notes(params)
    main_source = source_note(renders, [("main", s) for s in params.scenarios])
    table3 = tables.main_table("table3", results, ("image_auroc", "recall_at_fpr"))
    table4 = tables.main_table("table4", results, ("aupro",))
    write_table(out, table3, [*filter(None, [main_source]), *footnotes])
    write_table(out, table4, [*filter(None, [main_source]), *footnotes])
    for name, scenario in (("table5", "electrical_insulator"), ("table6", "witness_mark")):
        has_variants = scenario in params.ablation.scenarios and params.ablation.variants
        extra = [] if has_variants else ["Ablation variants of this scenario are not in params.yaml's `ablation`."]
        source = source_note(renders, [(v, scenario) for v in ("main", *params.ablation.variants)])
        write_table(out, tables.factor_table(name, scenario, results), [*filter(None, [source]), *footnotes, *extra])
    cap = params.active.train.patchcore.max_train_images
    cap_note = (
        f"PatchCore keeps the paper's cap of {cap} training images: its cells stay empty where a prefix "
        "is larger; `PatchCore (no cap)` trains on the whole prefix."
    )
    size_source = source_note(renders, [("main", s) for s in params.table7.scenarios])
    write_table(out, tables.size_table(size_results), [*filter(None, [size_source]), *footnotes, cap_note])
    cells = {
        **results,
        **{f"table7/{fraction:g}/{key}": row for fraction, rows in size_results.items() for key, row in rows.items()},
    }
    metrics: dict[str, Any] = {
        key: {method: flat_metrics(values) for method, values in row.items()} for key, row in cells.items()
    }
    panels = [
        panel
        for panel in (
            fidelity(table3, "image_auroc", params.seed, title="Table 3: image AUROC"),
            fidelity(table4, "aupro", params.seed, title="Table 4: AUPRO@0.3"),
        )
        if panel is not None
    ]
    if panels:
        metrics["fidelity"] = {panel.name: panel.metrics() for panel in panels}
    write_json_atomic(out / "metrics.json", metrics)
    verdicts = decide_all(out / "metrics.json", runs, size_runs, train_images=params.active.render.n_train)
    write_claims(verdicts, out / "tables", profile=params.profile)
    metrics["claims"] = claims_section(verdicts)  # so `dvc metrics diff` and `miad compare` follow the verdicts
    write_json_atomic(out / "metrics.json", metrics)
    count, figure_dir = params.active.report.figure_samples, out / "figures"
    if panels:
        figures.fidelity_plot(panels, figure_dir / "fidelity.png")
    figures.sample_grid(renders, "main", params.scenarios, count, figure_dir / "figure2_samples.png")
    for variant in params.ablation.variants if params.ablation.scenarios else ():  # no ablation scenario: no figure
        path = figure_dir / f"figure2_samples_{variant}.png"
        figures.sample_grid(renders, variant, params.ablation.scenarios, count, path)
    if stats_path is not None:
        stats = json.loads(Path(stats_path).read_text(encoding="utf-8"))
        write_text_atomic(out / "tables" / "dataset_stats.md", stats_table(stats))
        figures.defect_ratio_chart(stats, figure_dir / "dataset_defect_ratio.png")
        main_keys = [dataset_key("main", s) for s in params.scenarios if dataset_key("main", s) in stats]
        figures.angle_histograms(stats, main_keys, figure_dir / "dataset_angles.png")
    methods = all_methods(params)
    figures.anomaly_map_grid(
        renders,
        maps,
        "main",
        params.scenarios,
        methods,
        figure_dir / "figure4_anomaly_maps.png",
        pick=slice(0, 1),
        title="Figure 4. Anomaly maps, one defective image per scenario",
    )
    figures.anomaly_map_grid(
        renders,
        maps,
        "main",
        params.scenarios,
        methods,
        figure_dir / "figure5_more_maps.png",
        pick=slice(1, None),
        title="Figure 5. More anomaly maps (defective, then good images)",
    )
    write_page(out, profile=params.profile, made_by=(runs, size_runs, renders), project=project_root(out))
    return metrics
