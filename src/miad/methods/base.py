"""The one interface every anomaly detection method implements, and the pieces they all share.

A method subclasses `AnomalyMethod`, declares `name` and `config_class`, and implements `_fit`,
`_anomaly_maps` and its state hooks. The base class owns input validation, resizing and
normalisation, upsampling of the maps to the input resolution, the image score (always the max of
the anomaly map: the paper's rule), determinism, and atomic save/load (safetensors + JSON; nothing
is ever unpickled).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, final

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from miad.atomic import atomic_directory
from miad.config import build, to_dict
from miad.numeric_env import apply_thread_count
from miad.seeding import derive_seed, rng_for, torch_seed

GAUSSIAN_SIGMA = 4.0  # px at the output resolution; PatchCore's and anomalib's anomaly-map blur
GAUSSIAN_TRUNCATE = 4.0  # kernel radius in sigmas: 2 * int(4 * sigma + 0.5) + 1 = 33 taps, as anomalib
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CUBLAS_DETERMINISTIC = ":4096:8"  # cuBLAS workspace setting that deterministic CUDA matmuls need


@dataclass(frozen=True)
class Prediction:
    """What `predict` returns for a batch of B images of size H x W."""

    image_scores: np.ndarray  # (B,) float64, max of each anomaly map
    anomaly_maps: np.ndarray  # (B, H, W) float32, at the input image resolution


# --- shared functions -----------------------------------------------------------------------------------------


def _gaussian_kernel(sigma: float, radius: int) -> torch.Tensor:
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return (kernel / kernel.sum()).float()


def gaussian_blur(maps: torch.Tensor, sigma: float = GAUSSIAN_SIGMA) -> torch.Tensor:
    """Separable Gaussian blur of (B, H, W) maps with reflect borders (replicate when a side is too short)."""
    radius = int(GAUSSIAN_TRUNCATE * sigma + 0.5)
    kernel = _gaussian_kernel(sigma, radius).to(maps.device)
    x = maps[:, None].float()  # (B, 1, H, W)
    for dim in (-1, -2):
        mode = "reflect" if x.shape[dim] > radius else "replicate"
        pad = (radius, radius, 0, 0) if dim == -1 else (0, 0, radius, radius)
        weight = kernel.view(1, 1, 1, -1) if dim == -1 else kernel.view(1, 1, -1, 1)
        x = F.conv2d(F.pad(x, pad, mode=mode), weight)
    return x[:, 0]  # (B, H, W)


def upsample_maps(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, h, w) patch-level maps -> (B, H, W): bilinear (align_corners=False), then Gaussian blur, sigma=4.

    Every method goes through this function, so maps and image scores are comparable across methods.
    """
    if maps.ndim != 3:
        raise ValueError(f"expected anomaly maps of shape (B, h, w), got {tuple(maps.shape)}")
    up = F.interpolate(maps[:, None].float(), size=size, mode="bilinear", align_corners=False)  # (B, 1, H, W)
    return gaussian_blur(up[:, 0])


def check_image(image: object, where: str) -> np.ndarray:
    """Validate one uint8 RGB (H, W, 3) image; `where` names it in the error ("image 3")."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{where}: expected a numpy array, got {type(image).__name__}")
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        raise ValueError(f"{where} contains NaN or inf values")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise ValueError(
            f"expected uint8 RGB images of shape (H, W, 3), got {image.dtype} of shape {image.shape} ({where})"
        )
    return image


def check_images(images: Iterable[np.ndarray], *, same_size: bool) -> list[np.ndarray]:
    """Validate uint8 RGB (H, W, 3) images; a 4-D array is a batch. Raises ValueError naming the problem."""
    if isinstance(images, np.ndarray):
        if images.ndim != 4:
            raise ValueError(
                f"expected a batch array of shape (B, H, W, 3) or a sequence of (H, W, 3) images, "
                f"got an array of shape {images.shape}"
            )
        images = list(images)
    else:
        images = list(images)
    if not images:
        raise ValueError("expected at least one image, got an empty set")
    for i, image in enumerate(images):
        check_image(image, f"image {i}")
    if same_size and len({im.shape for im in images}) > 1:
        raise ValueError(f"images of one predict call must share a size, got {sorted({im.shape for im in images})}")
    return images


class TrainingImages(Sequence[np.ndarray]):
    """A lazy view of training images: `indices` picks from `source`, and each image is validated when read.

    Nothing is decoded or held here: a method reads its images batch by batch, so a training set of
    any size costs the memory of one batch (plus whatever a method chooses to cache within its budget).
    """

    def __init__(self, source: Sequence[np.ndarray], indices: Sequence[int] | None = None) -> None:
        self._source = source
        self._indices = list(range(len(source))) if indices is None else [int(i) for i in indices]

    def __len__(self) -> int:
        return len(self._indices)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = int(i)
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        index = self._indices[i]
        return check_image(self._source[index], f"image {index}")


def to_batch(
    images: Sequence[np.ndarray], size: int, mean: Sequence[float], std: Sequence[float], device: str
) -> torch.Tensor:
    """uint8 (H, W, 3) images -> normalised (B, 3, size, size) float32: bilinear resize with antialias."""
    mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    resized = []
    for image in images:
        x = torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1)[None]  # (1, 3, H, W)
        x = x.float() / 255.0
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        resized.append(x)
    return (torch.cat(resized) - mean_t) / std_t  # (B, 3, size, size)


@contextlib.contextmanager
def deterministic(device: str) -> Iterator[None]:
    """Deterministic torch algorithms inside the block (errors on CPU, warnings on accelerators)."""
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=not device.startswith("cpu"))
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


def library_versions() -> dict[str, str]:
    """Versions that decide whether a saved model reproduces bit for bit."""
    import timm

    import miad

    return {
        # major.minor only: a patch release (Debian's 3.11.2 in the images, 3.11.7 in a venv) changes no arithmetic,
        # and the full version is in the provenance sidecar, outside the bytes DVC hashes
        "python": "{}.{}".format(*sys.version_info[:2]),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "numpy": np.__version__,
        "miad": miad.__version__,
    }


def _write_model_dir(directory: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """model.safetensors + config.json, swapped in atomically (an old model is replaced only on success)."""
    with atomic_directory(directory) as temp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(temp / MODEL_FILE))
        (temp / CONFIG_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")


# --- the interface --------------------------------------------------------------------------------------------


class AnomalyMethod(ABC):
    """Fit on defect-free images, predict anomaly maps; the image score is always the max of the map."""

    name: ClassVar[str]  # registry key, e.g. "patchcore"
    config_class: ClassVar[type]  # the frozen dataclass in miad.config holding its hyperparameters

    def __init__(self, config: Any, seed: int, device: str = "cpu") -> None:
        if not isinstance(config, self.config_class):
            raise TypeError(f"{self.name} expects a {self.config_class.__name__}, got {type(config).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        if device.startswith("cuda"):
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_DETERMINISTIC)
        apply_thread_count()  # the count params pin, whatever the core count
        self.config = config
        self.seed = seed
        self.device = device
        self.fitted = False

    # -- what a method provides --

    @property
    def input_size(self) -> int:
        """Side of the square network input, px (every config's `image_size`)."""
        return self.config.image_size

    @property
    def batch_size(self) -> int:
        """Images per forward pass (every config's `batch_size`)."""
        return self.config.batch_size

    @property
    @abstractmethod
    def normalization(self) -> tuple[Sequence[float], Sequence[float]]:
        """Per-channel (mean, std) applied after scaling pixels to [0, 1]."""

    @abstractmethod
    def _fit(self, images: Sequence[np.ndarray]) -> None:
        """Train on uint8 images read lazily, batch by batch (`self._batches`); runs with autograd on.

        Never hold the decoded set: read `images[i]` or slices of it when a batch needs them.
        """

    @abstractmethod
    def _anomaly_maps(self, batch: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) normalised inputs -> (B, h, w) patch-level anomaly maps (any h, w)."""

    @abstractmethod
    def _state_tensors(self) -> dict[str, torch.Tensor]:
        """Tensors that `save` writes to model.safetensors."""

    def _state_extra(self) -> dict[str, Any]:
        """Small JSON-ready state saved in config.json."""
        return {}

    @abstractmethod
    def _load_state(self, tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
        """Restore what `_state_tensors` and `_state_extra` returned."""

    # -- shared machinery --

    def _generator(self, purpose: str) -> torch.Generator:
        """A torch generator for one purpose ("coreset", "shuffle", ...), seeded from this method's seed."""
        return torch.Generator().manual_seed(torch_seed(derive_seed(self.seed, self.name, purpose)))

    def _batches(self, images: Sequence[np.ndarray], order: Sequence[int] | None = None) -> Iterator[torch.Tensor]:
        """Network inputs, `batch_size` images at a time, in `order` if given: (B, 3, S, S) on `self.device`.

        Each batch is decoded when it is needed, so only one batch of images is in memory at a time.
        """
        mean, std = self.normalization
        n = len(images) if order is None else len(order)
        for start in range(0, n, self.batch_size):
            if order is None:
                chunk = images[start : start + self.batch_size]
            else:
                chunk = [images[int(i)] for i in order[start : start + self.batch_size]]
            batch = to_batch(chunk, self.input_size, mean, std, self.device)
            del chunk  # the decoded images go before the next batch is read
            yield batch

    def _n_batches(self, n_images: int) -> int:
        """How many batches `_batches` yields for `n_images` images."""
        return math.ceil(n_images / self.batch_size)

    def _training_subset(self, images: Sequence[np.ndarray]) -> TrainingImages:
        """The training images, lazily: a seeded random subset of `max_train_images` when the config caps the set.

        The paper caps PatchCore at 2000 images (Appendix 6.2); every method honours the field. Drawn
        before any image is decoded, so a capped run never loads the images it leaves out.
        """
        limit = getattr(self.config, "max_train_images", None)
        if limit is None or len(images) <= limit:
            return TrainingImages(images)
        keep = np.sort(rng_for(self.seed, self.name, "train_subset").choice(len(images), limit, replace=False))
        return TrainingImages(images, keep.tolist())

    @final
    def fit(self, images: Sequence[np.ndarray]) -> None:
        """Train on defect-free uint8 RGB (H, W, 3) images of any size; seeded and deterministic.

        `images` may be a lazy sequence (a `ShardDataset`'s images): methods read it batch by batch and
        each image is validated as it is read. Images already in memory (a list, tuple or array) are
        validated before training starts.
        """
        if isinstance(images, np.ndarray) and images.ndim != 4:
            check_images(images, same_size=False)  # raises, naming the shape
        if len(images) == 0:
            raise ValueError("expected at least one image, got an empty set")
        if isinstance(images, list | tuple | np.ndarray):
            for i, image in enumerate(images):
                check_image(image, f"image {i}")
        subset = self._training_subset(images)
        torch.manual_seed(torch_seed(self.seed))
        with deterministic(self.device):  # no no_grad here: trained methods need gradients
            self._fit(subset)
        self.fitted = True

    @final
    def predict(self, images: np.ndarray | Sequence[np.ndarray]) -> Prediction:
        """Anomaly maps at the input resolution and image scores (max of each map) for same-size images."""
        if not self.fitted:
            raise ValueError(f"{self.name}: predict called before fit (or load)")
        checked = check_images(images, same_size=True)
        size = checked[0].shape[:2]
        maps = []
        with deterministic(self.device), torch.no_grad():
            for batch in self._batches(checked):
                patch_maps = self._anomaly_maps(batch)  # (B, h, w)
                maps.append(upsample_maps(patch_maps, size).cpu())  # (B, H, W)
        anomaly_maps = torch.cat(maps).numpy().astype(np.float32, copy=False)
        image_scores = anomaly_maps.reshape(len(anomaly_maps), -1).max(axis=1).astype(np.float64)
        return Prediction(image_scores=image_scores, anomaly_maps=anomaly_maps)

    def save(self, directory: Path) -> None:
        """Write model.safetensors (tensors) and config.json (method, config, seed, versions, small state)."""
        if not self.fitted:
            raise ValueError(f"{self.name}: nothing to save before fit")
        meta = {
            "method": self.name,
            "config": to_dict(self.config),
            "seed": self.seed,
            "versions": library_versions(),
            "state": self._state_extra(),
        }
        _write_model_dir(Path(directory), self._state_tensors(), meta)

    @classmethod
    def load(cls, directory: Path, device: str = "cpu") -> AnomalyMethod:
        """Rebuild a saved method; on the base class the method is looked up by the name in config.json."""
        directory = Path(directory)
        config_path, model_path = directory / CONFIG_FILE, directory / MODEL_FILE
        for path in (config_path, model_path):
            if not path.is_file():
                raise FileNotFoundError(f"{path}: not found; is {directory} a directory written by save()?")
        meta = json.loads(config_path.read_text(encoding="utf-8"))
        target = cls
        if cls is AnomalyMethod:
            from miad.methods import get_method

            target = get_method(meta["method"])
        elif meta["method"] != cls.name:
            raise ValueError(f"{directory} holds a {meta['method']!r} model, not {cls.name!r}")
        config = build(target.config_class, meta["config"], f"{config_path}:config")
        method = target(config, int(meta["seed"]), device)
        method._load_state(load_file(str(model_path), device=device), meta.get("state", {}))
        method.fitted = True
        return method
