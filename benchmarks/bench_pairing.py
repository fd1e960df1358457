"""What pairing the ablation variants buys: for every method, scenario and factor of Tables 5 and 6, the interval
half-width of the AUROC change from the baseline with the variants resampled jointly (they are counterfactuals of
one image plan and share their bootstrap resamples) against the same replicates resampled independently per
variant. Reads a results folder (metrics.json and its run files; by default the workspace's), computes nothing
new, takes seconds. Writes one JSON file.

    .venv/bin/python benchmarks/bench_pairing.py --out results/bench/pairing.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from miad.atomic import write_json_atomic  # noqa: E402
from miad.claims.evidence import load_evidence  # noqa: E402
from miad.claims.pairing import FactorEffect, factor_effects  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="results/bench/pairing.json", help="JSON file to write")
    parser.add_argument("--results", default=str(REPO / "results"), help="folder with metrics.json, runs/")
    args = parser.parse_args()
    results = Path(args.results)
    evidence = load_evidence(results / "metrics.json", results / "runs", results / "runs_size")
    effects = factor_effects(evidence)
    rows = [
        {
            "scenario": e.scenario,
            "method": e.method,
            "variant": e.variant,
            "auroc_change": round(e.point, 4),
            "paired_half_width": FactorEffect.half_width(e.paired),
            "unpaired_half_width": FactorEffect.half_width(e.unpaired),
            "paired_note": e.paired_note,
        }
        for e in effects
    ]
    paired = [r["paired_half_width"] for r in rows if r["paired_half_width"] is not None]
    apart = [r["unpaired_half_width"] for r in rows if r["unpaired_half_width"] is not None]
    result = {
        "results": str(results),
        "profile": evidence.profile,
        "confidence": evidence.confidence,
        "effects": len(rows),
        "jointly_resampled": sum(r["paired_note"].startswith("paired") for r in rows),
        "median_paired_half_width": statistics.median(paired) if paired else None,
        "median_unpaired_half_width": statistics.median(apart) if apart else None,
        "max_paired_half_width": max(paired) if paired else None,
        "median_width_ratio_unpaired_to_paired": (
            statistics.median(a / p for p, a in zip(paired, apart, strict=True) if p > 0) if paired else None
        ),
        "rows": rows,
    }
    write_json_atomic(Path(args.out), result)
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))


if __name__ == "__main__":
    main()
