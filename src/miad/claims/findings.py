"""The paper's findings (sections 4.2-4.4 and Figure 1) as data: the sentence quoted, the cells it speaks about, and
the rule (a name in miad.claims.decide.RULES, with its parameters) that decides it from our results.

Where the paper's words are vague ("most", "about equal", "a little", "a lot") the finding's `note` says which rule
reads them and why, once; the numbers are chosen so that each rule holds on the paper's own Tables 3-7 (tests check
it) and are never tuned toward our results. `backbones` marks findings about how particular methods rank or react:
they rest on the paper's backbones (WideResNet-50 for RD, PatchCore and FastFlow; EfficientNet-B4 for UniAD), and a
profile that swaps them (EfficientNet-Lite0 on CPU) may well differ without contradicting the finding's cause.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from miad.catalog import ABLATION_SCENARIOS, SCENARIOS

ABLATION_METHODS = ("rd", "patchcore", "fastflow", "draem")  # Tables 5-7: the four methods kept after 4.2
TABLE3_METHODS = ("rd", "patchcore", "fastflow", "draem", "ae", "uniad")
FACTORS = ("uv", "ub", "us")
SURFACE = tuple(k for k, s in SCENARIOS.items() if s.anomaly == "surface")
LOGICAL = tuple(k for k, s in SCENARIOS.items() if s.anomaly == "logical")
EI, WM = ABLATION_SCENARIOS  # electrical_insulator (surface), witness_mark (logical)

# The vague words, each read once (the reasons are in the findings' notes).
EQUAL_MARGIN = 0.10  # "about equal impact": mean AUROC drops of two factors within 0.10 of each other
NO_DROP_MARGIN = 0.10  # PatchCore "except[ed]" on the witness mark: its drop stays below 0.10
NEAR_099 = 0.95  # "AUROC of 0.99" on the toy witness mark: the methods' mean AUROC above 0.95
LITTLE_GAIN = 0.05  # "a little benefit" (and "fail" to benefit): AUROC gain below 0.05
LARGE_GAIN = 0.10  # "benefit a lot": AUROC gain above 0.10
PAPER_CAP_FRACTION = 0.2  # 2000 of the paper's 10000 training images
PAPER_CAP_IMAGES = 2000


@dataclass(frozen=True)
class Finding:
    """One finding of the paper and the rule that decides it."""

    id: str  # stable key: metrics.json's claims/<id>, claims.csv's first column
    section: str  # "4.3", "Figure 1", ...
    quote: str  # the paper's sentence, verbatim
    statement: str  # what we test, in one line
    scope: str  # the cells it speaks about
    rule: str  # a name in miad.claims.decide.RULES
    params: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""  # why the rule reads the paper's words this way
    backbones: bool = False  # rests on the paper's backbones (may differ on Lite0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))


FINDINGS: tuple[Finding, ...] = (
    Finding(
        "4.3-factors-lower-auroc",
        "4.3",
        "UV, UB and US will bring significant drops in performance separately to most methods except PatchCore on "
        "the witness mark.",
        "each of +UV, +UB, +US lowers image AUROC below the baseline for most methods, on both scenarios",
        "Tables 5-6: AUROC, baseline vs +UV/+UB/+US, RD PatchCore FastFlow DRAEM (PatchCore on WM excepted)",
        "factor_drop",
        {"scenarios": (EI, WM), "factors": FACTORS, "methods": ABLATION_METHODS, "excepted": ((WM, "patchcore"),)},
        note="'significant' = the drop's interval lies above 0; 'most methods' = strictly more than half of the "
        "methods for each (scenario, factor) (3 of 4 on EI, 2 of 3 on WM), and every (scenario, factor) must have "
        "such a majority. The paper's own Table 5 needs the majority: RD rises under +UV on EI (0.85 -> 0.89).",
        backbones=True,
    ),
    Finding(
        "4.3-patchcore-witness-exception",
        "4.3",
        "UV, UB and US will bring significant drops in performance separately to most methods except PatchCore on "
        "the witness mark.",
        f"PatchCore on the witness mark loses less than {NO_DROP_MARGIN:g} AUROC to each factor",
        "Table 6: PatchCore AUROC, baseline vs +UV/+UB/+US",
        "factor_no_drop",
        {"scenario": WM, "method": "patchcore", "factors": FACTORS, "margin": NO_DROP_MARGIN},
        note=f"An exception to 'significant drops' is a drop below a margin, not no drop at all: the paper excepts "
        f"PatchCore while its +UB AUROC falls 1.00 -> 0.93, so its margin exceeds 0.07; {NO_DROP_MARGIN:g} is the "
        "next round value. Every factor must stay below it.",
        backbones=True,
    ),
    Finding(
        "4.3-equal-impact",
        "4.3",
        "The three factors seems to have equal impact from the view of AUROC.",
        f"the methods' mean AUROC drops of UV, UB and US lie within {EQUAL_MARGIN:g} of each other, per scenario",
        "Tables 5-6 'Mean' column: AUROC drop of each factor, pairwise differences, EI and WM",
        "equal_impact",
        {"scenarios": (EI, WM), "factors": FACTORS, "methods": ABLATION_METHODS, "margin": EQUAL_MARGIN},
        note=f"'about equal' = every pairwise difference of the mean drops lies inside (-{EQUAL_MARGIN:g}, "
        f"{EQUAL_MARGIN:g}) (an equivalence test): the paper calls drops of 0.09, 0.11 and 0.03 on EI equal (largest "
        "difference 0.07), so its margin is above 0.07.",
    ),
    Finding(
        "4.3-us-dominates-recall",
        "4.3",
        "However, from the view of Recall@1%FPR, US plays a dominant role for the surface anomaly.",
        "on the electrical insulator, US lowers the methods' mean Recall@1%FPR more than UV and more than UB",
        "Table 5 'Mean' column: Recall@1%FPR of +US vs +UV and +UB",
        "largest_drop",
        {"scenario": EI, "factor": "us", "others": ("uv", "ub"), "methods": ABLATION_METHODS},
        note="'dominant role' = the largest drop: US's drop exceeds each other factor's (baseline cancels, so the "
        "effect is recall(+other) - recall(+US)); both comparisons must hold.",
    ),
    Finding(
        "4.3-combination-worst",
        "4.3",
        "The combination of these factors results in greater drops without exception.",
        "with all three factors (main) the methods' mean AUROC is below that with any single factor, on both scenarios",
        "Tables 5-6 'Mean' column: AUROC of +UV+UB+US (main) vs +UV, +UB, +US",
        "combination_worse",
        {"scenarios": (EI, WM), "factors": FACTORS, "methods": ABLATION_METHODS},
        note="'without exception' = every (scenario, single factor) pair, on the methods' mean (the tables' Mean "
        "column). Method by method the paper's own Table 5 breaks it (DRAEM: +UV 0.78 < all three 0.81; RD on WM: "
        "+UB 0.57 = 0.57), so the per-method reading is not what the authors could have meant. Our main data also "
        "varies its light (the field) where the single-factor variants hold it fixed, so main stands for all three "
        "factors and the field's light together (docs/architecture.md).",
    ),
    Finding(
        "fig1-witness-baseline",
        "Figure 1",
        "Some state-of-the-art methods can achieve AUROC of 0.99 on the toy dataset for witness marks with indoor "
        "setting.",
        f"on the witness mark baseline the methods' mean AUROC is above {NEAR_099:g}",
        "Table 6 baseline row: AUROC of RD, PatchCore, FastFlow, DRAEM (their mean, as Figure 1 plots)",
        "at_least",
        {"dataset": f"baseline/{WM}", "methods": ABLATION_METHODS, "threshold": NEAR_099},
        note=f"Figure 1 plots the methods' mean (0.99 in Table 6, RD at 0.95); 'about 0.99' = the mean's interval "
        f"above {NEAR_099:g}. It also tests our renderer: the baseline must be as easy as the paper's toy set.",
        backbones=True,
    ),
    Finding(
        "4.2-no-clear-winner",
        "4.2",
        "None of the evaluated methods emerges as a clear winner.",
        "every method is beaten in AUROC on some scenario",
        "Table 3: AUROC, six methods x seven scenarios",
        "no_winner",
        {"methods": TABLE3_METHODS, "scenarios": tuple(SCENARIOS)},
        note="'no clear winner' = no method wins every scenario: for each method some scenario's best other method "
        "(by point value) has a higher AUROC (any scenario suffices, every method must be beaten).",
        backbones=True,
    ),
    Finding(
        "4.2-draem-best-mean",
        "4.2",
        "Considering only the mean AUROC, DRAEM is the best and achieves 0.85.",
        "DRAEM's AUROC averaged over the seven scenarios exceeds every other method's",
        "Table 3 'Mean' row: AUROC",
        "best_mean",
        {"method": "draem", "methods": TABLE3_METHODS, "scenarios": tuple(SCENARIOS)},
        note="Mean over the seven scenarios; DRAEM must beat each of the five others.",
        backbones=True,
    ),
    Finding(
        "4.2-draem-surface-rd-logical",
        "4.2",
        "DRAEM is more preferable for surface anomaly and Reverse Distillation is more preferable for logical anomaly.",
        "DRAEM beats RD in mean AUROC over the surface scenarios, RD beats DRAEM over the logical ones",
        "Table 3: AUROC of DRAEM and RD, surface (4) and logical (3) scenario means",
        "preferred_by_anomaly",
        {
            "surface": ("draem", "rd"),
            "logical": ("rd", "draem"),
            "surface_scenarios": SURFACE,
            "logical_scenarios": LOGICAL,
        },
        note="'more preferable' contrasts the two methods named: the winner of each pair over its anomaly type's "
        "scenario mean (not the best of all six methods); both comparisons must hold.",
        backbones=True,
    ),
    Finding(
        "4.2-auroc-recall-disagree",
        "4.2",
        "In addition, the two metrics AUROC and Recall@1%FPR does not satisfy the monotonic relation.",
        "on some scenario a method with higher AUROC has lower Recall@1%FPR than another",
        "Table 3: AUROC and Recall@1%FPR per scenario",
        "metrics_disagree",
        {"first": "image_auroc", "second": "recall_at_fpr", "methods": TABLE3_METHODS, "scenarios": tuple(SCENARIOS)},
        note="Per scenario the pair tested is the AUROC winner and the best Recall@1%FPR among the others (the "
        "paper's example: RD vs PatchCore on the catenary dropper); the pair must be ordered oppositely by the two "
        "metrics, both differences decided; one scenario suffices.",
    ),
    Finding(
        "4.2-aupro-not-auroc",
        "4.2",
        "We can observe that a high AUPRO does not necessarily coincide with a high AUROC or a high Recall@1%FPR.",
        "on some scenario a method with higher AUPRO has lower AUROC than another",
        "Tables 3-4: AUPRO and AUROC per scenario",
        "metrics_disagree",
        {"first": "aupro", "second": "image_auroc", "methods": TABLE3_METHODS, "scenarios": tuple(SCENARIOS)},
        note="As the AUROC/recall finding: the AUPRO winner against the best AUROC among the others, per scenario "
        "(the paper's witness mark: UniAD 0.79 AUPRO, 0.59 AUROC; PatchCore 0.65, 0.71).",
    ),
    Finding(
        "4.2-ae-uniad-weakest",
        "4.2",
        "Since the Auto-Encoder and UniAD performs poorly on MIAD, we will conduct further experiments only with the "
        "other four methods.",
        "AE and UniAD each have a lower mean AUROC than each of RD, PatchCore, FastFlow and DRAEM",
        "Table 3 'Mean' row: AUROC",
        "weakest",
        {"weak": ("ae", "uniad"), "strong": ABLATION_METHODS, "scenarios": tuple(SCENARIOS)},
        note="'performs poorly' = the two weakest: each below each of the other four (8 comparisons, all must hold).",
        backbones=True,
    ),
    Finding(
        "4.4-rd-grows",
        "4.4",
        "As shown in Table 7, Reverse Distillation enjoys the growth of the training data size.",
        "RD's AUROC with the full training set exceeds that with the smallest prefix, on each Table 7 scenario",
        "Table 7: RD AUROC, smallest vs largest training fraction, EI and WM",
        "size_change",
        {"parts": ((EI, "rd", "min", "max", 0.0, None), (WM, "rd", "min", "max", 0.0, None))},
        note="'enjoys the growth' = a net gain from the smallest to the largest prefix (interval above 0); "
        "step-by-step monotony is not tested (the paper's own WM column is flat from 40% to 80%).",
        backbones=True,
    ),
    Finding(
        "4.4-patchcore-fastflow-plateau",
        "4.4",
        "PatchCore and FastFlow obtain a little benefit after the training dataset size is larger than 2000.",
        f"PatchCore and FastFlow gain less than {LITTLE_GAIN:g} AUROC from the 20% prefix (2000 images) to the largest",
        "Table 7: PatchCore (uncapped where capped is missing) and FastFlow AUROC, 20% vs largest fraction, EI and WM",
        "size_change",
        {
            "parts": tuple(
                (s, m, PAPER_CAP_FRACTION, "max", None, LITTLE_GAIN)
                for m in ("patchcore", "fastflow")
                for s in (EI, WM)
            )
        },
        note=f"'a little benefit' = a gain below {LITTLE_GAIN:g} AUROC (a loss counts as little benefit too); the "
        "paper's FastFlow gains 0.00 on both scenarios. The paper has no PatchCore cell beyond 2000 images, so on its "
        "own numbers this half rests on nothing; we decide it with the uncapped PatchCore.",
        backbones=True,
    ),
    Finding(
        "4.4-draem-insulator-gains-witness-fails",
        "4.4",
        "DRAEM, which is more preferable for surface anomaly, benefit a lot from the extensive training data on the "
        "electrical insulator but fail on the witness mark.",
        f"DRAEM gains more than {LARGE_GAIN:g} AUROC from the smallest to the largest prefix on EI, less than "
        f"{LITTLE_GAIN:g} on WM",
        "Table 7: DRAEM AUROC, smallest vs largest fraction, EI and WM",
        "size_change",
        {"parts": ((EI, "draem", "min", "max", LARGE_GAIN, None), (WM, "draem", "min", "max", None, LITTLE_GAIN))},
        note=f"'a lot' = a gain above {LARGE_GAIN:g} (the paper's 0.18; twice the 'little' margin); 'fail' = no "
        f"benefit, a gain below {LITTLE_GAIN:g} (the paper's 0.01).",
    ),
    Finding(
        "4.4-patchcore-beyond-2000",
        "4.4",
        "Furthermore, PatchCore is failed to run when training data size is larger than 2000 due to GPU memory "
        "limitation.",
        "our PatchCore (without the 2000-image cap) runs on more than 2000 training images",
        "Table 7: PatchCore (no cap) cells beyond the 20% prefix",
        "runs_beyond",
        {"methods": ("patchcore_uncapped", "patchcore"), "fraction": PAPER_CAP_FRACTION, "images": PAPER_CAP_IMAGES},
        note="Not a finding about anomaly detection but a limit of the paper's implementation; we test our "
        "claim that we lift it. It holds when a PatchCore run on more than 2000 training images has a finite AUROC; "
        "runs on fewer images (every profile below `paper`) say nothing about memory and leave it undecided.",
    ),
)

FINDING_IDS = tuple(f.id for f in FINDINGS)
assert len(set(FINDING_IDS)) == len(FINDINGS), "finding ids must be unique"
