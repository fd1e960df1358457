"""What the cross-vendor fixes cost: each against what it replaced, in the same run.

- MKL's COMPATIBLE branch against its automatic one (the pin's `MKL_CBWR`; an Intel CPU honoured the old AVX2 setting,
  an AMD one ran AUTO): float32 GEMMs of the shapes PatchCore's nearest-neighbour search and UniAD's transformer
  use, each branch in a fresh process (MKL reads the setting once);
- torch's fused Adam (a square root with the IEEE instruction) against its default foreach Adam (MKL's vector
  square root, whose bits follow the vendor), one step over Reverse Distillation's student at smoke size;
- PatchCore's nearest distances (squared distances, one correctly rounded root per query) against the `torch.cdist`
  version they replaced.
Rates are medians over repeats on this machine; the JSON keeps every timing. Writes one JSON file.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from fresh_process import in_fresh_process  # noqa: E402
from miad.atomic import write_json_atomic  # noqa: E402

GEMM_SHAPES = {  # (m, k, n): what one call multiplies
    "patchcore_search": (3136, 272, 8192),  # one batch's patches against a bank chunk (smoke: Lite0 layers 2+3)
    "uniad_attention": (1024, 64, 1024),
    "uniad_feedforward": (1024, 64, 128),
}


def _time(fn, repeats: int) -> list[float]:
    fn()  # warm up (JIT, allocator)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def _gemms(branch: str, threads: int, repeats: int, queue) -> None:
    import os

    from miad import numeric_env

    numeric_env.pin(threads)
    os.environ["MKL_CBWR"] = branch  # after the pin, before torch loads
    import torch

    numeric_env.apply_thread_count()
    out = {}
    for name, (m, k, n) in GEMM_SHAPES.items():
        a, b = torch.randn(m, k), torch.randn(k, n)
        out[name] = _time(lambda a=a, b=b: a @ b, repeats)
    queue.put(out)


def _adam_and_search(threads: int, repeats: int, queue) -> None:
    from miad import numeric_env

    numeric_env.pin(threads)
    import torch

    numeric_env.apply_thread_count()
    from miad.methods.patchcore import nearest_distances
    from miad.methods.reverse_distillation_model import ReverseDistillationStudent

    student = ReverseDistillationStudent((24, 40, 112))  # Lite0 layers 1-3 at smoke size
    params = [p for p in student.parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.randn_like(p)
    out = {"parameters": sum(p.numel() for p in params)}
    for fused in (True, False):
        optimizer = torch.optim.Adam(params, lr=1e-3, fused=fused, foreach=None if fused else True)
        out["adam_fused" if fused else "adam_foreach"] = _time(optimizer.step, repeats)
    queries, bank = torch.randn(3136, 272), torch.randn(8192, 272)
    out["nearest_portable"] = _time(lambda: nearest_distances(queries, bank), repeats)
    out["nearest_cdist"] = _time(lambda: torch.cdist(queries, bank).min(dim=1).values, repeats)
    queue.put(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    median = statistics.median
    gemm = {branch: in_fresh_process(_gemms, branch, args.threads, args.repeats) for branch in ("COMPATIBLE", "AUTO")}
    steps = in_fresh_process(_adam_and_search, args.threads, args.repeats)
    summary = {
        "gemm_compatible_over_auto": {k: median(gemm["COMPATIBLE"][k]) / median(gemm["AUTO"][k]) for k in GEMM_SHAPES},
        "adam_fused_over_foreach": median(steps["adam_fused"]) / median(steps["adam_foreach"]),
        "nearest_portable_over_cdist": median(steps["nearest_portable"]) / median(steps["nearest_cdist"]),
    }
    result = {
        "what": "time ratios (> 1: the portable version is slower), medians of repeats, same run",
        "threads": args.threads,
        "summary": summary,
        "seconds": {"gemm": gemm, "steps": steps},
    }
    write_json_atomic(Path(args.out), result)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
