"""The benchmarked methods by name: the paper's column order, which are implemented, which are unified.

Kept apart from miad.catalog (scenarios) so that the render stage, which depends on that module,
does not rerun when a method is added.
"""

from __future__ import annotations

METHOD_NAMES = ("rd", "patchcore", "fastflow", "draem", "ae", "uniad")  # the paper's column order
# Methods with an implementation in miad.methods (a test checks this against the registry).
TRAINABLE = ("rd", "patchcore", "fastflow", "draem", "ae", "uniad")
UNIFIED = ("uniad",)  # methods that train one model on all scenarios together
METHOD_TITLES = {
    "rd": "RD",
    "patchcore": "PatchCore",
    "fastflow": "FastFlow",
    "draem": "DRAEM",
    "ae": "AE",
    "uniad": "UniAD",
}
