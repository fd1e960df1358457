"""Export a rendered dataset to the MVTec AD folder layout for other tools.

<scenario>/train/good/<stem>.png, <scenario>/test/good/<stem>.png, <scenario>/test/<defect>/<stem>.png,
<scenario>/ground_truth/<defect>/<stem>_mask.png. Written into a temp folder, then renamed.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tqdm import tqdm

from miad.atomic import atomic_directory
from miad.data.dataset import ShardDataset
from miad.data.layout import GOOD, SPLITS, split_dir
from miad.data.shards import encode_png


def export_mvtec(renders: Path, variant: str, scenarios: Iterable[str], out: Path, *, force: bool = False) -> int:
    """Write the MVTec AD layout of `scenarios` under `out`; return the number of images written."""
    out = Path(out)
    if out.exists() and not force:
        raise FileExistsError(f"{out} exists; pass --force to replace it")
    written = 0
    with atomic_directory(out) as temp:
        for scenario in scenarios:
            for split in SPLITS:
                dataset = ShardDataset(split_dir(renders, variant, scenario, split))
                for sample in tqdm(dataset, desc=f"export {scenario}/{split}", unit="img", leave=False):
                    kind = sample.entry.defect_type
                    target = temp / scenario / split / kind / f"{sample.entry.stem}.png"
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(encode_png(sample.image))
                    if kind != GOOD:
                        mask_path = temp / scenario / "ground_truth" / kind / f"{sample.entry.stem}_mask.png"
                        mask_path.parent.mkdir(parents=True, exist_ok=True)
                        mask_path.write_bytes(encode_png(sample.mask))
                    written += 1
                dataset.close()
    return written
