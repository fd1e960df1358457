"""A tiny DVC project with plain shell stages (no miad), for tests of how stages are launched and recorded."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.pipeline_slice import run

# a -> b -> d, a -> c -> d, e alone; `fail` (when asked) breaks c, so d waits while b and e still finish
STAGES = {
    "a": {"cmd": "mkdir -p out && echo alpha > out/a.txt", "outs": ["out/a.txt"]},
    "b": {"cmd": "cat out/a.txt > out/b.txt && echo beta >> out/b.txt", "deps": ["out/a.txt"], "outs": ["out/b.txt"]},
    "c": {"cmd": "sleep 1 && cat out/a.txt > out/c.txt", "deps": ["out/a.txt"], "outs": ["out/c.txt"]},
    "d": {"cmd": "cat out/b.txt out/c.txt > out/d.txt", "deps": ["out/b.txt", "out/c.txt"], "outs": ["out/d.txt"]},
    "e": {"cmd": "mkdir -p out && echo epsilon > out/e.txt", "outs": ["out/e.txt"]},
}
FAILING_C = "echo 'c: the toy stage broke on purpose' >&2 && exit 3"


def make_toy(root: Path, *, fail: bool = False) -> Path:
    """A git + DVC project at `root` whose dvc.yaml holds STAGES (c failing when `fail`)."""
    root.mkdir(parents=True)
    run(["git", "init", "-q"], root)
    run(["dvc", "init", "-q"], root)
    stages = {name: dict(stage) for name, stage in STAGES.items()}
    if fail:
        stages["c"]["cmd"] = FAILING_C
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False), encoding="utf-8")
    return root


def outputs(root: Path) -> dict[str, bytes]:
    """Every file under out/; .gitignore as its sorted lines (DVC appends each output as it records the stage, so
    the line order is the recording order, which is not fixed even for plain `dvc repro`)."""
    files = {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted((root / "out").glob("*"))}
    if "out/.gitignore" in files:
        files["out/.gitignore"] = b"".join(sorted(files["out/.gitignore"].splitlines(keepends=True)))
    return files
