"""The asset library in data/: what rendering reads but does not compute.

Background images (sky-and-ground plates for day scenes) and surface degradation textures (dust,
rust, dirt), each split into disjoint train and test pools so that no test image can share a
background or a texture with a training image. Everything is generated procedurally from a fixed
seed, byte-identically on every machine, so `data.dvc` pins one exact tree: `make reproduce` pulls
it from a DVC remote when one holds it and otherwise rebuilds it here and checks it file by file.

Portability: the generator uses only operations whose bits do not depend on the CPU's SIMD path:
integer arithmetic, IEEE add/sub/mul/div/sqrt applied element by element, min/max, comparisons and
NumPy's bit-exact random generator. No transcendental ufunc (`**`, exp, log run through SVML on
AVX-512 CPUs and through libm elsewhere), no OpenCV resize (IPP picks its code per CPU), no BLAS and
no summing reductions (their order follows the vector width). tests/test_assets.py rebuilds the tree
under several dispatch settings and checks every file against data.dvc.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from miad.atomic import atomic_directory
from miad.data.shards import encode_png
from miad.errors import MiadError
from miad.hashing import file_md5

ASSET_SEED = 20230417  # fixed: the asset library is data, not a function of params.yaml
ASSET_SIZE = 256  # px, square
POOL_SIZES = {"train": 12, "test": 6}  # images per pool (backgrounds and each texture kind)
TEXTURE_KINDS = ("dust", "rust", "dirt")
TEXTURE_BASE_RGB = {"dust": (176, 160, 132), "rust": (120, 58, 28), "dirt": (72, 62, 50)}
DVC_FILE = "data.dvc"


class AssetMismatchError(MiadError, RuntimeError):
    """The asset tree differs from what data.dvc pins; the message lists the files."""


def cubic_weights(dst: int, src: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (dst, 4) and weights (dst, 4) of bicubic upsampling from `src` to `dst` samples.

    OpenCV's coordinate rule (pixel centres, edge pixels replicated) and the Catmull-Rom kernel, evaluated as
    explicit float64 polynomials: only IEEE add, sub and mul, so the bits do not depend on the CPU's SIMD path.
    """
    position = (np.arange(dst, dtype=np.float64) + 0.5) * (src / dst) - 0.5
    left = np.floor(position)
    t = (position - left)[:, None]  # (dst, 1), in [0, 1)
    offsets = np.array([-1.0, 0.0, 1.0, 2.0])
    d = np.abs(t - offsets)  # (dst, 4) distances to the four taps
    near = ((1.5 * d - 2.5) * d) * d + 1.0  # |d| <= 1
    far = ((-0.5 * d + 2.5) * d - 4.0) * d + 2.0  # 1 < |d| < 2
    weights = np.where(d <= 1.0, near, far)
    indices = np.clip(left.astype(np.int64)[:, None] + offsets.astype(np.int64), 0, src - 1)
    return indices, weights


def upsample_cubic(grid: np.ndarray, size: int) -> np.ndarray:
    """(cells, cells) -> (size, size) bicubic upsampling, separable, taps summed in a fixed order (no BLAS)."""
    indices, weights = cubic_weights(size, grid.shape[0])
    rows = grid[indices[:, 0]] * weights[:, 0:1]  # (size, cells)
    for k in range(1, 4):
        rows = rows + grid[indices[:, k]] * weights[:, k : k + 1]
    out = rows[:, indices[:, 0]] * weights[:, 0]  # (size, size)
    for k in range(1, 4):
        out = out + rows[:, indices[:, k]] * weights[:, k]
    return out


def fractional_power(x: np.ndarray, exponent: float) -> np.ndarray:
    """x ** exponent for x in [0, 1] and exponent in [1.5, 3], portable: a blend of the neighbouring
    half-integer powers (x * sqrt(x), x * x, ...), since float `**` runs through CPU-specific code (SVML)."""
    if not 1.5 <= exponent <= 3.0:
        raise ValueError(f"exponent must be in [1.5, 3], got {exponent}")
    root = np.sqrt(x)
    halves = {3: x * root, 4: x * x, 5: x * x * root, 6: x * x * x}  # x ** (h / 2)
    low = min(int(2 * exponent), 5)
    t = 2 * exponent - low
    return (1.0 - t) * halves[low] + t * halves[low + 1]


def fractal_noise(rng: np.random.Generator, size: int, octaves: int = 5, persistence: float = 0.55) -> np.ndarray:
    """Smooth value noise in [0, 1], (size, size) float64: octaves of bicubically upsampled random grids."""
    total = np.zeros((size, size), np.float64)
    amplitude, weight = 1.0, 0.0
    for octave in range(octaves):
        cells = 2 ** (octave + 2)
        total = total + amplitude * upsample_cubic(rng.random((cells, cells)), size)
        weight += amplitude
        amplitude *= persistence
    total = total / weight
    spread = max(float(total.max() - total.min()), 1e-6)
    return np.clip((total - total.min()) / spread, 0.0, 1.0)


def background_image(rng: np.random.Generator, size: int = ASSET_SIZE) -> np.ndarray:
    """A day background plate: a sky gradient with cloud noise above a textured ground band."""
    rows = (np.arange(size, dtype=np.float64) / (size - 1))[:, None]
    zenith = np.array([rng.uniform(40, 90), rng.uniform(90, 140), rng.uniform(170, 230)])
    horizon = np.array([rng.uniform(170, 215), rng.uniform(190, 225), rng.uniform(210, 240)])
    sky = zenith + (horizon - zenith) * rows[..., None]  # (size, 1, 3)
    clouds = fractional_power(fractal_noise(rng, size), rng.uniform(1.5, 3.0))[..., None]
    image = np.broadcast_to(sky, (size, size, 3)) * (1 - clouds) + 245.0 * clouds
    horizon_row = int(size * rng.uniform(0.55, 0.8))
    ground_rgb = np.array([rng.uniform(60, 120), rng.uniform(70, 120), rng.uniform(40, 80)])
    ground = ground_rgb * (0.6 + 0.8 * fractal_noise(rng, size, octaves=6)[..., None])
    image[horizon_row:] = ground[horizon_row:]
    return np.clip(image, 0, 255).astype(np.uint8)


def texture_image(rng: np.random.Generator, kind: str, size: int = ASSET_SIZE) -> np.ndarray:
    """A degradation texture with an alpha-like coverage baked into brightness: dust, rust or dirt."""
    base = np.array(TEXTURE_BASE_RGB[kind], np.float64) * rng.uniform(0.85, 1.15, 3)
    detail = fractal_noise(rng, size, octaves=6)[..., None]
    blotches = fractal_noise(rng, size, octaves=3)[..., None] > rng.uniform(0.35, 0.65)
    image = base * (0.55 + 0.9 * detail) * np.where(blotches, 1.0, 0.75)
    return np.clip(image, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class AssetFile:
    relative: str  # path under data/
    payload: bytes


def generate() -> Iterator[AssetFile]:
    """Every file of the asset tree, in a fixed order, from the fixed seed."""
    for pool, count in POOL_SIZES.items():
        for i in range(count):
            rng = np.random.default_rng([ASSET_SEED, 0, list(POOL_SIZES).index(pool), i])
            yield AssetFile(f"backgrounds/{pool}/bg_{i:03d}.png", encode_png(background_image(rng)))
        for k, kind in enumerate(TEXTURE_KINDS):
            for i in range(count):
                rng = np.random.default_rng([ASSET_SEED, 1 + k, list(POOL_SIZES).index(pool), i])
                yield AssetFile(f"textures/{kind}/{pool}/{kind}_{i:03d}.png", encode_png(texture_image(rng, kind)))


def build(target: Path) -> list[str]:
    """Write the asset tree to `target` (via a temp folder and a rename); return its relative paths."""
    names = []
    with atomic_directory(Path(target)) as temp:
        for item in generate():
            path = temp / item.relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(item.payload)
            names.append(item.relative)
    return names


def pinned_files(dvc_file: Path) -> dict[str, str]:
    """{relative path: md5} that data.dvc pins (kept in its `meta` block, next to DVC's own hash)."""
    if not dvc_file.is_file():
        raise AssetMismatchError(f"{dvc_file}: missing; it pins the asset tree")
    meta = (yaml.safe_load(dvc_file.read_text(encoding="utf-8")) or {}).get("meta") or {}
    files = meta.get("files")
    if not isinstance(files, dict) or not files:
        raise AssetMismatchError(f"{dvc_file}: has no meta.files listing; regenerate it with `miad assets pin`")
    return files


def compare(root: Path, pinned: dict[str, str]) -> list[str]:
    """Each way `root` differs from the pinned listing: missing, extra or changed files."""
    actual = listing(root)
    problems = [f"missing: {name}" for name in sorted(set(pinned) - set(actual))]
    problems += [f"unexpected: {name}" for name in sorted(set(actual) - set(pinned))]
    problems += [
        f"differs: {name} (md5 {actual[name][:8]}, pinned {pinned[name][:8]})"
        for name in sorted(set(actual) & set(pinned))
        if actual[name] != pinned[name]
    ]
    return problems


def check(root: Path, dvc_file: Path) -> None:
    """Raise AssetMismatchError naming every file of `root` that differs from data.dvc."""
    problems = compare(root, pinned_files(dvc_file))
    if problems:
        shown = "\n  ".join(problems[:50]) + (f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else "")
        raise AssetMismatchError(f"{root} does not match {dvc_file}:\n  {shown}")


def listing(root: Path) -> dict[str, str]:
    """{relative path: md5} of every file under `root`, sorted."""
    return {p.relative_to(root).as_posix(): file_md5(p) for p in sorted(Path(root).rglob("*")) if p.is_file()}
