"""DRAEM's anomaly simulation: Perlin-noise masks filled with augmented textures (the original's training set).

A port of `MVTecDRAEMTrainDataset` from the authors' code (github.com/vitjanz/draem, `data_loader.py` and
`perlin.py`) with numpy/OpenCV/PIL in place of imgaug, every random number drawn from a numpy Generator:

- the normal image is rotated by a random angle with probability 0.3 (the original's `do_aug_orig`, black
  corners); the paper's Appendix 6.4 gives the range (-45, 45) degrees (`rotation_degrees`), the original code
  (-90, 90);
- with probability 0.5 the sample stays normal (mask all zero), as in the original;
- otherwise a Perlin noise map with a grid of 2**a x 2**b cells (a, b drawn from [scale_min, scale_max), the
  original's `torch.randint(0, 6)`), rotated by U(-90, 90) degrees, thresholded at 0.5, is the anomaly mask;
- the anomaly source is a random texture image resized to the input size (OpenCV bilinear, as the original) and
  changed by `n` distinct augmentations, in the drawn order, out of the seven the paper lists (posterize,
  sharpness, solarize, equalize, brightness change, colour change, auto-contrast), with the original's imgaug
  parameters; the original's three further augmenters (gamma contrast, invert, affine rotation) are not in the
  paper's list and are left out;
- blend: augmented = image * (1 - m) + (1 - beta) * texture * m + beta * image * m, beta ~ U(0, 0.8).

Anomaly source: the original used the Describable Textures Dataset (DTD), which cannot be had here (no network).
We use the asset library's procedural degradation textures (data/textures/<kind>/train/*.png, built by
`miad assets build`) and only their `train` pools, so no test texture is ever seen in training. Any folder of
images below `train` subfolders works (`anomaly_source`); `write_demo_textures` makes a small colourful one for
tests. Posterize, sharpness, solarize, equalize and auto-contrast use PIL (imgaug's `pillike` augmenters match
PIL, and its Posterize zeroes the low bits as PIL does); brightness and colour use OpenCV colour spaces.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageEnhance, ImageOps

PERLIN_THRESHOLD = 0.5  # noise above this is anomalous
PERLIN_ROTATION = 90.0  # degrees, the mask's random rotation range (-90, 90) (original: iaa.Affine(rotate))
NO_ANOMALY_PROB = 0.5  # share of samples left normal
BETA_MAX = 0.8  # opacity factor beta ~ U(0, 0.8) of the image under the texture
ROTATE_NORMAL_PROB = 0.3  # the original rotates the normal image when torch.rand(1) > 0.7
TRAIN_POOL = "train"  # only textures below a folder of this name are used
TEXTURE_SUFFIXES = (".png", ".jpg", ".jpeg")

# imgaug parameters of the original's augmenters
POSTERIZE_BITS = (1, 8)  # iaa.Posterize(): bits kept, inclusive
SHARPNESS_FACTOR = (0.0, 2.0)  # iaa.pillike.EnhanceSharpness()
SOLARIZE_PROB, SOLARIZE_THRESHOLD = 0.5, (32.0, 128.0)  # iaa.Solarize(0.5, threshold=(32, 128))
BRIGHTNESS_MUL, BRIGHTNESS_ADD = (0.8, 1.2), (-30.0, 30.0)  # iaa.MultiplyAndAddToBrightness
HUE_SATURATION_ADD = 50  # iaa.AddToHueAndSaturation((-50, 50), per_channel=True), on imgaug's 0-255 hue scale
OPENCV_HUE_RANGE = 180  # OpenCV's uint8 hue runs over 0..179
AUTOCONTRAST_CUTOFF = (0, 20)  # iaa.pillike.Autocontrast(): percent cut off each end, inclusive


# --- Perlin noise ---------------------------------------------------------------------------------------------


def _fade(t: np.ndarray) -> np.ndarray:
    return 6 * t**5 - 15 * t**4 + 10 * t**3


def perlin_noise(shape: tuple[int, int], res: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """2-D Perlin noise of `shape` over a `res` grid of cells, as the original's `rand_perlin_2d_np`.

    A side that `res` does not divide is generated at the next multiple and cropped.
    """
    padded = (math.ceil(shape[0] / res[0]) * res[0], math.ceil(shape[1] / res[1]) * res[1])
    cell = (padded[0] // res[0], padded[1] // res[1])  # px per grid cell
    ys = (np.arange(padded[0]) * res[0] / padded[0]) % 1
    xs = (np.arange(padded[1]) * res[1] / padded[1]) % 1
    grid = np.stack(np.meshgrid(ys, xs, indexing="ij"), axis=-1)  # (H, W, 2) position inside the cell
    angles = 2 * math.pi * rng.random((res[0] + 1, res[1] + 1))
    gradients = np.stack((np.cos(angles), np.sin(angles)), axis=-1)  # (res0 + 1, res1 + 1, 2)

    def corner(dy: int, dx: int) -> np.ndarray:
        grads = gradients[dy : dy + res[0], dx : dx + res[1]]
        tiled = np.repeat(np.repeat(grads, cell[0], axis=0), cell[1], axis=1)  # (H, W, 2)
        return ((grid - np.array([dy, dx])) * tiled).sum(axis=-1)  # (H, W)

    t = _fade(grid)
    top = corner(0, 0) * (1 - t[..., 0]) + corner(1, 0) * t[..., 0]
    bottom = corner(0, 1) * (1 - t[..., 0]) + corner(1, 1) * t[..., 0]
    noise = math.sqrt(2) * (top * (1 - t[..., 1]) + bottom * t[..., 1])
    return noise[: shape[0], : shape[1]]


def rotate(image: np.ndarray, angle: float) -> np.ndarray:
    """Rotate (H, W[, C]) about its centre by `angle` degrees: bilinear, black outside (imgaug Affine defaults)."""
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0)
    return cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def perlin_mask(size: int, rng: np.random.Generator, scale_min: int, scale_max: int) -> np.ndarray:
    """Binary (size, size) float32 anomaly mask: thresholded, randomly rotated Perlin noise."""
    res = (2 ** int(rng.integers(scale_min, scale_max)), 2 ** int(rng.integers(scale_min, scale_max)))
    noise = perlin_noise((size, size), res, rng).astype(np.float32)
    noise = rotate(noise, float(rng.uniform(-PERLIN_ROTATION, PERLIN_ROTATION)))
    return (noise > PERLIN_THRESHOLD).astype(np.float32)


# --- texture augmentations (the original's randAugmenter) -----------------------------------------------------


def _pil(fn: Callable[[Image.Image, np.random.Generator], Image.Image]) -> Callable:
    def apply(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.asarray(fn(Image.fromarray(image), rng), dtype=np.uint8)

    apply.__name__ = fn.__name__
    return apply


@_pil
def posterize(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    return ImageOps.posterize(image, int(rng.integers(POSTERIZE_BITS[0], POSTERIZE_BITS[1] + 1)))


@_pil
def sharpness(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    return ImageEnhance.Sharpness(image).enhance(float(rng.uniform(*SHARPNESS_FACTOR)))


@_pil
def solarize(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    if rng.random() >= SOLARIZE_PROB:
        return image
    return ImageOps.solarize(image, round(float(rng.uniform(*SOLARIZE_THRESHOLD))))


@_pil
def equalize(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    return ImageOps.equalize(image)


@_pil
def autocontrast(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    return ImageOps.autocontrast(image, cutoff=int(rng.integers(AUTOCONTRAST_CUTOFF[0], AUTOCONTRAST_CUTOFF[1] + 1)))


def brightness(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Multiply and add (in random order) on the luma channel (YCrCb), as imgaug's MultiplyAndAddToBrightness."""
    ycrcb = cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb)
    luma = ycrcb[..., 0].astype(np.float32)
    mul, add = float(rng.uniform(*BRIGHTNESS_MUL)), float(rng.uniform(*BRIGHTNESS_ADD))
    luma = luma * mul + add if rng.random() < 0.5 else (luma + add) * mul
    ycrcb[..., 0] = np.clip(np.round(luma), 0, 255).astype(np.uint8)
    return cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB)


def color(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Add independent integers in [-50, 50] to hue (imgaug's 0-255 scale, cyclic) and saturation (clipped)."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    d_hue, d_sat = rng.integers(-HUE_SATURATION_ADD, HUE_SATURATION_ADD + 1, size=2)
    hue_shift = round(int(d_hue) * OPENCV_HUE_RANGE / 255)
    hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + hue_shift) % OPENCV_HUE_RANGE).astype(np.uint8)
    hsv[..., 1] = np.clip(hsv[..., 1].astype(np.int16) + int(d_sat), 0, 255).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


AUGMENTATIONS: tuple[Callable[[np.ndarray, np.random.Generator], np.ndarray], ...] = (
    posterize,
    sharpness,
    solarize,
    equalize,
    brightness,
    color,
    autocontrast,
)


def augment_texture(texture: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """`n` distinct augmentations, drawn at random and applied in the drawn order, of a uint8 RGB image."""
    out = np.ascontiguousarray(texture)
    for index in rng.choice(len(AUGMENTATIONS), size=n, replace=False):
        out = np.ascontiguousarray(AUGMENTATIONS[int(index)](out, rng))
    return out


# --- anomaly sources ------------------------------------------------------------------------------------------


def find_anomaly_sources(root: str | Path) -> list[Path]:
    """Image files below a `train` folder of `root` (e.g. data/textures/*/train/*.png), sorted; never test pools."""
    root = Path(root)
    files = []
    if root.is_dir():
        for path in root.rglob("*"):
            relative = path.relative_to(root)
            if path.suffix.lower() in TEXTURE_SUFFIXES and TRAIN_POOL in relative.parts[:-1] and path.is_file():
                files.append(path)
    if not files:
        raise FileNotFoundError(
            f"{root}: no anomaly source textures (expected images in {root}/<kind>/{TRAIN_POOL}/*.png); "
            "run `miad assets restore` to get the asset library"
        )
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def read_texture(path: Path, size: int) -> np.ndarray:
    """A texture file as uint8 RGB (size, size, 3), resized with OpenCV bilinear as the original."""
    pixels = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if pixels is None:
        raise ValueError(f"{path}: not a readable image")
    pixels = cv2.resize(pixels, (size, size), interpolation=cv2.INTER_LINEAR)
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)


def blend(image: np.ndarray, texture: np.ndarray, mask: np.ndarray, beta: float) -> np.ndarray:
    """image * (1 - m) + (1 - beta) * texture * m + beta * image * m; float (H, W, 3) in [0, 1], mask (H, W)."""
    m = mask[..., None]  # (H, W, 1)
    return (image * (1 - m) + (1 - beta) * texture * m + beta * image * m).astype(np.float32)


@dataclass
class AnomalySimulator:
    """Turns a normal training image into (clean target, input with simulated anomaly, mask)."""

    sources: list[Path]
    size: int  # px, side of the square network input
    augmentations_per_image: int = 3
    rotation_degrees: float = 45.0
    perlin_scale_min: int = 0
    perlin_scale_max: int = 6  # exclusive, as the original's torch.randint(0, 6)
    _cache: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.augmentations_per_image <= len(AUGMENTATIONS):
            raise ValueError(f"augmentations_per_image must be in 1..{len(AUGMENTATIONS)}")
        if self.perlin_scale_min >= self.perlin_scale_max:
            raise ValueError(
                f"perlin_scale_min ({self.perlin_scale_min}) must be below perlin_scale_max "
                f"({self.perlin_scale_max}): the exponent is drawn from [min, max) as in the original"
            )

    def texture(self, index: int) -> np.ndarray:
        """Source texture `index`, resized to the input size (read once, then cached)."""
        if index not in self._cache:
            self._cache[index] = read_texture(self.sources[index], self.size)
        return self._cache[index]

    def simulate(
        self, image: np.ndarray, texture: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """(augmented image, mask) for a float (S, S, 3) image in [0, 1]; half of the time left normal."""
        if rng.random() < NO_ANOMALY_PROB:
            return image.astype(np.float32, copy=True), np.zeros(image.shape[:2], np.float32)
        source = augment_texture(texture, rng, self.augmentations_per_image).astype(np.float32) / 255.0
        mask = perlin_mask(self.size, rng, self.perlin_scale_min, self.perlin_scale_max)
        return blend(image, source, mask, float(rng.uniform(0.0, BETA_MAX))), mask

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """float (S, S, 3) image in [0, 1] -> (clean, augmented, mask (S, S)), all float32."""
        if image.shape != (self.size, self.size, 3):
            raise ValueError(f"expected an image of shape {(self.size, self.size, 3)}, got {image.shape}")
        texture = self.texture(int(rng.integers(len(self.sources))))
        if self.rotation_degrees > 0 and rng.random() < ROTATE_NORMAL_PROB:
            image = rotate(image, float(rng.uniform(-self.rotation_degrees, self.rotation_degrees)))
        clean = image.astype(np.float32, copy=False)
        augmented, mask = self.simulate(clean, texture, rng)
        return clean, augmented, mask


def demo_texture(rng: np.random.Generator, size: int, octaves: int) -> np.ndarray:
    """Two random colours (anywhere in RGB, bright ones included) mixed by fractal noise: a DTD-like stand-in."""
    from miad.assets import fractal_noise

    colours = rng.uniform(0, 255, (2, 3)).astype(np.float32)
    weight = fractal_noise(rng, size, octaves=octaves)[..., None] ** rng.uniform(0.5, 2.0)  # (size, size, 1)
    return np.clip(colours[0] * (1 - weight) + colours[1] * weight, 0, 255).astype(np.uint8)


DEMO_TEXTURE_KINDS = {"coarse": 3, "medium": 5, "fine": 7}  # name: fractal-noise octaves


def write_demo_textures(root: str | Path, per_pool: int = 3, size: int = 64, seed: int = 0) -> Path:
    """A tiny texture library in the asset layout (<kind>/{train,test}/*.png) for tests and demos; returns root."""
    root = Path(root)
    for k, (kind, octaves) in enumerate(DEMO_TEXTURE_KINDS.items()):
        for p, pool in enumerate((TRAIN_POOL, "test")):
            folder = root / kind / pool
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_pool):
                pixels = demo_texture(np.random.default_rng([seed, k, p, i]), size, octaves)
                cv2.imwrite(str(folder / f"{kind}_{i:03d}.png"), cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
    return root
