"""What tests/test_cross_cpu.py runs on each CPU: a few of every kind of computation the pipeline does, digested.

`python tests/cross_cpu_probe.py PART OUT.json [ASSETS_DIR]` writes {name: sha256} for one part (and, for `render`,
the images and masks themselves beside it, OUT.npz):
- `assets`: every file of the asset library, generated WITHOUT the numeric pin (the asset library promises
  CPU-independent arithmetic whatever the dispatch, as its docstring says);
- `render`: test images of every scenario with all its factors (Blender/Cycles; 64 px, 4 spp, one each unless
  MIAD_PROBE_RENDER says otherwise);
- `methods`: each method trained a few steps on tiny images and its anomaly maps on two more (torch, timm,
  oneDNN, MKL, OpenCV's augmentations), plus the PatchCore inference at the end.
Everything but `assets` runs pinned, as every `miad` command does. The test runs this natively and under qemu-user
with other CPU models (vendor, ISA, cache sizes) and compares the digests.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

IMAGE_SIZE = 64
# DRAEM's two U-Nets are by far the most arithmetic, and qemu emulates every vector instruction: at 64 px and the
# profile's widths its training took 190 s of the methods part's 335 s under qemu Haswell. Narrower and smaller, it
# runs the same operators (convolutions forward and backward, batch norm, Adam, SSIM, the augmentations), and the
# methods part takes 199 s.
DRAEM_PROBE = {"image_size": 32, "reconstructive_channels": 8, "discriminative_channels": 8}
SEED = 5


def _digest(*arrays) -> str:
    import numpy as np

    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def assets() -> dict[str, str]:
    from miad import assets as library

    return {item.relative: hashlib.sha256(item.payload).hexdigest() for item in library.generate()}


def render(assets_dir: Path, arrays: Path) -> dict[str, str]:
    """Test images of every scenario with all its factors (env MIAD_PROBE_RENDER="size,spp,images",
    default 64 px, 4 spp, 1 image), defect types in turn."""
    import tempfile

    import numpy as np

    from miad.catalog import SCENARIOS
    from miad.config import RenderConfig
    from miad.data.layout import GOOD
    from miad.render.plan import SamplePlan
    from miad.render.scene import ScenarioRenderer

    size, samples, count = (int(v) for v in os.environ.get("MIAD_PROBE_RENDER", "64,4,1").split(","))
    cfg = RenderConfig(resolution=size, samples=samples, assets_dir=str(assets_dir))
    out, images = {}, {}
    with tempfile.TemporaryDirectory() as temp:
        for i, (scenario, info) in enumerate(SCENARIOS.items()):
            renderer = ScenarioRenderer(scenario, info.factors, cfg, Path(temp))
            kinds = [*info.defect_types, GOOD]
            for k in range(count):
                plan = SamplePlan(index=k, split="test", defect_type=kinds[k % len(kinds)], seed=SEED + 100 * i + k)
                sample = renderer.render(plan)
                out[f"render/{scenario}/{k}"] = _digest(sample.image, sample.mask)
                images[f"{scenario}/{k}/image"], images[f"{scenario}/{k}/mask"] = sample.image, sample.mask
    np.savez_compressed(arrays, **images)
    return out


def methods(assets_dir: Path) -> dict[str, str]:
    import dataclasses
    import tempfile

    import numpy as np

    from miad.config import load_params
    from miad.methods import METHODS, create_method
    from miad.methods.base import MODEL_FILE
    from tests.project_copy import REPO

    params = load_params(REPO / "params.yaml")
    rng = np.random.default_rng(SEED)
    base = rng.integers(0, 256, size=(IMAGE_SIZE, IMAGE_SIZE, 3))
    noisy = [np.clip(base + rng.integers(-30, 31, size=base.shape), 0, 255).astype(np.uint8) for _ in range(6)]
    train, test = noisy[:4], noisy[4:]
    few_steps = {"epochs": 1, "batch_size": 2, "lr_milestones": [1], "lr_drop_epoch": 1, "feature_size": 4,
                 "augmentations_per_image": 1, "anomaly_source": str(assets_dir / "textures")}  # fmt: skip
    out = {}
    for name in METHODS:
        config = getattr(params.active.train, name)
        changes = {k: v for k, v in few_steps.items() if hasattr(config, k)}
        size_and_width = DRAEM_PROBE if name == "draem" else {"image_size": IMAGE_SIZE}
        model = create_method(name, dataclasses.replace(config, **changes, **size_and_width), seed=SEED)
        model.fit(train)
        prediction = model.predict(test)
        with tempfile.TemporaryDirectory() as temp:
            model.save(Path(temp) / name)
            out[f"train/{name}"] = hashlib.sha256((Path(temp) / name / MODEL_FILE).read_bytes()).hexdigest()
        out[f"predict/{name}"] = _digest(prediction.image_scores, prediction.anomaly_maps)
    return out


def main(argv: list[str]) -> int:
    part, out = argv[0], Path(argv[1])
    assets_dir = Path(argv[2]) if len(argv) > 2 else None
    if part != "assets":
        from miad import numeric_env

        numeric_env.pin(2)
    elif os.environ.get("MIAD_UNPINNED") != "1":
        raise SystemExit("the assets part runs unpinned: set MIAD_UNPINNED=1")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `tests` importable when run as a script
    parts = {
        "assets": assets,
        "render": lambda: render(assets_dir, out.with_suffix(".npz")),
        "methods": lambda: methods(assets_dir),
    }
    digests = parts[part]()
    out.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
