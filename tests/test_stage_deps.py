"""Every DVC stage depends on the code it runs: its dvc.yaml deps cover the import closure of its command."""

from __future__ import annotations

import pytest

from tests.stage_imports import command_modules, function_closure, missing_deps, module_closure, stage_commands

STAGES = stage_commands()


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_deps_cover_the_code_it_runs(stage: str) -> None:
    command, deps = STAGES[stage]
    missing = missing_deps(deps, command_modules(command))
    assert not missing, f"dvc.yaml stage {stage!r} (miad {command}) runs code its deps miss: {missing}"


def test_every_stage_of_the_pipeline_is_checked() -> None:
    assert {"render", "render_ablation", "train", "evaluate", "stats", "report"} <= STAGES.keys()


def test_the_closure_sees_what_a_stage_runs() -> None:
    """The derivation itself: lazy imports inside functions count, and so do the packages above a module."""
    render = command_modules("render")
    assert {"miad.render.shard", "miad.render.background", "miad.assets", "miad.data.shards"} <= render
    assert "miad.methods.patchcore" not in render  # rendering trains nothing
    assert "miad.render.scenarios.witness_mark" in render  # loaded by name (importlib) from the registry
    assert "miad.methods.patchcore" in command_modules("train")  # imported lazily, by name, inside functions
    assert "miad.render.scene" not in module_closure("miad.metrics")
    assert "miad.render.shard" in function_closure("miad.render.cli", "cmd_render")
    assert "src/miad/reporting/paper_results.yaml" in missing_deps([], command_modules("report"))  # data it reads


def test_a_missing_dep_is_named() -> None:
    deps = ["src/miad/render", "src/miad/data"]
    assert missing_deps(deps, ["miad.render.shard", "miad.data.shards", "miad.assets"]) == ["src/miad/assets.py"]
