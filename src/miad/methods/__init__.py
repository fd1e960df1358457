"""Anomaly detection methods, registered explicitly by name (the names params.yaml and the CLI use)."""

from __future__ import annotations

from typing import Any

from miad.method_catalog import TRAINABLE
from miad.methods.autoencoder import Autoencoder
from miad.methods.base import AnomalyMethod, Prediction, upsample_maps
from miad.methods.draem import Draem
from miad.methods.fastflow import FastFlow
from miad.methods.patchcore import PatchCore
from miad.methods.reverse_distillation import ReverseDistillation
from miad.methods.uniad import UniAD


def _registry(*classes: type[AnomalyMethod]) -> dict[str, type[AnomalyMethod]]:
    """{name: class}, keyed by each class's own `name`; every name must be one of miad.method_catalog's, once."""
    registry = {cls.name: cls for cls in classes}
    if len(registry) != len(classes) or set(registry) != set(TRAINABLE):
        raise RuntimeError(f"method registry {sorted(registry)} does not match miad.method_catalog {sorted(TRAINABLE)}")
    return registry


METHODS = _registry(Draem, PatchCore, Autoencoder, FastFlow, ReverseDistillation, UniAD)


class UnknownMethodError(KeyError):
    """A method name that is not in the registry; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError would repr() the message, quotes and all
        return str(self.args[0])


def get_method(name: str) -> type[AnomalyMethod]:
    """The method class registered as `name`."""
    try:
        return METHODS[name]
    except KeyError:
        raise UnknownMethodError(f"unknown method {name!r}; known methods: {sorted(METHODS)}") from None


def create_method(name: str, config: Any, seed: int, device: str = "cpu") -> AnomalyMethod:
    """A fresh, unfitted instance of method `name` with its config (e.g. `TrainConfig.patchcore`)."""
    return get_method(name)(config, seed, device)


__all__ = [
    "METHODS",
    "AnomalyMethod",
    "Prediction",
    "UnknownMethodError",
    "create_method",
    "get_method",
    "upsample_maps",
]
