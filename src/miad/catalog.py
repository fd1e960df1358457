"""What MIAD's data is made of: scenarios (paper Table 2), uncontrolled factors and dataset variants.

Imports nothing heavy, so config validation, the renderer and the report all read the same facts.
Every scenario listed here has its paper row and its scene (miad.render.scenarios).
"""

from __future__ import annotations

from dataclasses import dataclass

FACTOR_NAMES = ("uv", "ub", "us")  # uncontrolled viewpoint, background, surface (paper 3.1)


@dataclass(frozen=True)
class ScenarioInfo:
    """One row of the paper's Table 2, plus our defect type names."""

    key: str
    title: str
    anomaly: str  # "surface" or "logical"
    factors: tuple[str, ...]  # uncontrolled factors of the main set
    light: str  # "day" or "night"
    defect_types: tuple[str, ...]
    paper_defect_pixel_ratio: float  # fraction of all pixels, Table 2


SCENARIOS: dict[str, ScenarioInfo] = {
    s.key: s
    for s in (
        ScenarioInfo(
            "electrical_insulator",
            "Electrical Insulator",
            "surface",
            ("uv", "ub", "us"),
            "night",
            ("broken_shed",),
            0.0004,
        ),
        ScenarioInfo("metal_welding", "Metal Welding", "surface", ("uv", "us"), "day", ("porosity", "crack"), 0.0010),
        ScenarioInfo(
            "photovoltaic_module",
            "Photovoltaic Module",
            "surface",
            ("uv",),
            "day",
            ("cell_crack", "snail_trail", "hot_spot"),
            0.0011,
        ),
        ScenarioInfo("wind_turbine", "Wind Turbine", "surface", ("uv", "ub", "us"), "day", ("erosion",), 0.0005),
        ScenarioInfo(
            "catenary_dropper",
            "Catenary Dropper",
            "logical",
            ("uv", "ub"),
            "day",
            ("missing_dropper", "broken_dropper", "loose_clamp"),
            0.0037,
        ),
        ScenarioInfo(
            "nut_and_bolt",
            "Nut and Bolt",
            "logical",
            ("uv", "ub"),
            "night",
            ("missing_nut", "loose_nut", "missing_washer"),
            0.0036,
        ),
        ScenarioInfo(
            "witness_mark", "Witness Mark", "logical", ("uv", "ub", "us"), "day", ("misaligned_mark",), 0.0070
        ),
    )
}
SCENARIO_NAMES = tuple(SCENARIOS)

# Dataset variants: `main` is each scenario with its Table 2 factors; the ablation variants of
# Tables 5 and 6 switch factors on one at a time from a controlled baseline.
VARIANT_FACTORS: dict[str, tuple[str, ...] | None] = {
    "main": None,  # None = the scenario's own Table 2 factors
    "baseline": (),
    "uv": ("uv",),
    "ub": ("ub",),
    "us": ("us",),
}
VARIANT_NAMES = tuple(VARIANT_FACTORS)
# Every variant of a scenario renders counterfactuals of one plan, the main dataset's: image i of baseline, +UV, +UB,
# +US and main has the same seed, so the same defect type, placement draws, background and surface draws; a variant
# switches factors on or off, nothing else. Its name stays in every seed so that the main data keeps its bytes.
PLAN_VARIANT = "main"
ABLATION_SCENARIOS = ("electrical_insulator", "witness_mark")  # the only scenarios with ablation variants


def light_is_controlled(variant: str) -> bool:
    """Whether every image of `variant` has one light (the ablation variants: a controlled environment, paper 4.3)
    or each its own (main: the field, where the sun and a lamp's placement change from image to image)."""
    return VARIANT_FACTORS[variant] is not None


def applied_factors(variant: str, scenario: str) -> tuple[str, ...]:
    """The uncontrolled factors the renderer applies to `scenario` in `variant` (each image's index records them):
    the scenario's Table 2 factors in `main`, the variant's own in the ablation variants."""
    chosen = VARIANT_FACTORS[variant]
    return SCENARIOS[scenario].factors if chosen is None else chosen
