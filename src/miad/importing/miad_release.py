"""MIAD's released class folders and our scenario keys: the one table that maps them.

The release (https://miad-2022.github.io/) names its seven classes after the paper's Table 2; folder names are
matched after lower-casing and turning spaces and hyphens into underscores, so `Electrical Insulator`,
`electrical-insulator` and `electrical_insulator` all name the same class. The short names are those the
paper's figures use.
"""

from __future__ import annotations

import re

# normalised class-folder name -> our scenario key (see miad.catalog.SCENARIOS)
MIAD_CLASSES: dict[str, str] = {
    "electrical_insulator": "electrical_insulator",
    "insulator": "electrical_insulator",
    "metal_welding": "metal_welding",
    "welding": "metal_welding",
    "photovoltaic_module": "photovoltaic_module",
    "photovoltaic": "photovoltaic_module",
    "pv_module": "photovoltaic_module",
    "wind_turbine": "wind_turbine",
    "catenary_dropper": "catenary_dropper",
    "dropper": "catenary_dropper",
    "nut_and_bolt": "nut_and_bolt",
    "nut_bolt": "nut_and_bolt",
    "witness_mark": "witness_mark",
}


def normalise(name: str) -> str:
    """`Electrical Insulator` -> `electrical_insulator`."""
    return re.sub(r"[\s\-]+", "_", name.strip()).lower()


def scenario_for_class(name: str) -> str | None:
    """Our scenario key for a MIAD class folder name, or None when the name is not one of MIAD's classes."""
    return MIAD_CLASSES.get(normalise(name))
