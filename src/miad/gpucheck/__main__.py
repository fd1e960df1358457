"""`python -m miad.gpucheck [--dir DIR] [--images N]`: the prepared first check of a lent NVIDIA GPU."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from miad.gpucheck import GpuCheckError
from miad.gpucheck.run import run_check
from miad.project import project_root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m miad.gpucheck", description=__doc__)
    parser.add_argument("--dir", help="work folder for renders and checkpoints (default: a new temp folder)")
    parser.add_argument("--images", type=int, default=16, help="training images to render (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        summary = run_check(project_root(Path.cwd()), Path(args.dir) if args.dir else None, args.images)
    except (GpuCheckError, FileNotFoundError) as exc:
        print(f"gpucheck: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    train = summary["train"]
    ok = train["checkpoint_identical"] and train["maps_identical"] and all("error" not in r for r in summary["render"])
    print(f"gpucheck: {'PASS' if ok else 'FAIL'} in {summary['seconds']:.0f}s; details in {summary['folder']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
