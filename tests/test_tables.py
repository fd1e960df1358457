import numpy as np

from miad.catalog import SCENARIOS
from miad.method_catalog import METHOD_NAMES
from miad.reporting.estimates import Estimate
from miad.reporting.tables import MISSING, OUTSIDE, main_table, paper_results, to_csv, to_latex, to_markdown


def test_paper_numbers_are_complete_and_spot_checked():
    paper = paper_results()
    for table in ("table3", "table4"):
        assert set(paper[table]) == {*SCENARIOS, "mean"}
        assert all(set(row) == set(METHOD_NAMES) for row in paper[table].values())
    assert paper["table3"]["photovoltaic_module"]["draem"] == [1.00, 0.85]
    assert paper["table4"]["witness_mark"]["rd"] == 0.10
    assert paper["table5"]["uv"]["patchcore"] == [0.64, 0.02]
    assert paper["table6"]["baseline"]["mean"] == [0.99, 0.86]
    assert paper["table7"][0.4]["patchcore"] is None


def test_cells_show_ours_beside_paper():
    results = {"main/electrical_insulator": {"patchcore": {"image_auroc": 0.6, "recall_at_fpr": 0.05, "aupro": 0.7}}}
    t3 = main_table("table3", results, ("image_auroc", "recall_at_fpr"))
    assert t3.cell("electrical_insulator", "patchcore", "image_auroc").text() == "0.60 / 0.55"
    assert t3.cell("electrical_insulator", "rd", "image_auroc").text() == f"{MISSING} / 0.68"
    assert t3.cell("mean", "patchcore", "image_auroc").ours is None  # partial means are not shown
    md = to_markdown(t3)
    assert "| Electrical Insulator | AUROC |" in md and "|  | Recall@1%FPR |" in md
    assert md.count("\n| ") == 1 + 16  # header + 8 rows x 2 metrics
    t4 = main_table("table4", results, ("aupro",))
    assert t4.cell("electrical_insulator", "patchcore", "aupro").text() == "0.70 / 0.64"
    assert "patchcore,aupro,0.700000,,,,0.640000,0.060000,0" in to_csv(t4)
    assert r"\bottomrule" in to_latex(t4)


def test_full_mean_is_computed():
    results = {f"main/{s}": {"ae": {"aupro": 0.5}} for s in SCENARIOS}
    t4 = main_table("table4", results, ("aupro",))
    assert abs(t4.cell("mean", "ae", "aupro").ours.value - 0.5) < 1e-12


def test_factor_table_layout_and_mean():
    from miad.reporting.tables import factor_table

    results = {
        "uv/witness_mark": {
            m: {"image_auroc": 0.5, "recall_at_fpr": 0.1} for m in ("rd", "patchcore", "fastflow", "draem")
        }
    }
    table = factor_table("table6", "witness_mark", results)
    assert table.cell("uv", "patchcore", "image_auroc").text() == "0.50 / 1.00"
    assert table.cell("uv", "mean", "recall_at_fpr").text() == "0.10 / 0.30"
    assert table.cell("baseline", "rd", "image_auroc").ours is None
    md = to_markdown(table)
    assert "| Factors | Metric | RD | PatchCore | FastFlow | DRAEM | Mean |" in md and "| +UV | AUROC |" in md


def test_size_table_keeps_paper_gaps():
    from miad.reporting.tables import size_table

    results = {f: {} for f in (0.1, 0.2, 0.8, 1.0)}
    results[0.4] = {"main/electrical_insulator": {"patchcore_uncapped": {"image_auroc": 0.6}}}
    table = size_table(results)
    assert table.cell("0.4", "patchcore", "electrical_insulator").text() == f"{MISSING} / {MISSING}"
    assert table.cell("0.4", "patchcore_uncapped", "electrical_insulator").text() == f"0.60 / {MISSING}"
    assert table.cell("0.1", "draem", "witness_mark").paper == 0.51
    assert "| 40% | EI |" in to_markdown(table)


def replicates_around(centre: float, half_width: float) -> np.ndarray:
    """2001 evenly spaced replicates: their 95% percentile interval is centre -+ 0.95 * half_width."""
    return np.linspace(centre - half_width, centre + half_width, 2001)


def test_intervals_show_and_paper_values_outside_them_are_marked():
    inside = Estimate(0.6, replicates_around(0.6, 0.1))  # [0.505, 0.695]: the paper's 0.55 lies inside
    outside = Estimate(0.9, replicates_around(0.9, 0.05))  # [0.8525, 0.9475]: the paper's 0.68 lies outside
    results = {"main/electrical_insulator": {"patchcore": {"image_auroc": inside}, "rd": {"image_auroc": outside}}}
    t3 = main_table("table3", results, ("image_auroc", "recall_at_fpr"))
    assert t3.cell("electrical_insulator", "patchcore", "image_auroc").text() == "0.60 [0.51, 0.69] / 0.55"
    assert t3.cell("electrical_insulator", "rd", "image_auroc").text() == f"0.90 [0.85, 0.95] / 0.68{OUTSIDE}"
    md = to_markdown(t3)
    assert f"0.90 [0.85, 0.95] / 0.68{OUTSIDE}" in md and f"{OUTSIDE} = the paper's value lies outside" in md
    assert "(1 of 2 cells)" in md
    rows = to_csv(t3).splitlines()
    assert "table3,electrical_insulator,rd,image_auroc,0.900000,0.852500,0.947500,,0.680000,0.220000,1" in rows
    assert "0.90 [0.85, 0.95] / 0.68$^\\dagger$" in to_latex(t3)


def test_several_training_seeds_show_their_spread_and_means_pair_the_replicates():
    seeds = Estimate(0.7, replicates_around(0.7, 0.1), seed_values=(0.68, 0.72))
    results = {f"main/{s}": {"ae": {"aupro": seeds}} for s in SCENARIOS}
    t4 = main_table("table4", results, ("aupro",))
    assert t4.cell("witness_mark", "ae", "aupro").text() == f"0.70±0.03 [0.60, 0.79] / 0.56{OUTSIDE}"
    mean = t4.cell("mean", "ae", "aupro").ours
    assert abs(mean.value - 0.7) < 1e-12 and mean.seed_std is not None
    assert np.allclose(mean.replicates, seeds.replicates)  # the same replicates averaged resample by resample
    assert "$\\pm$" in to_latex(t4)
