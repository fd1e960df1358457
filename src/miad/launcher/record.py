"""The DVC side of one stage, split around its command the way `Stage.run` does it, so the command can run
elsewhere while this process alone touches DVC's state, cache and lock file (one stage at a time)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dvc.stage import Stage


def is_stale(stage: Stage, upstream: list[Stage]) -> bool:
    """`dvc repro`'s own test (Stage.reproduce): a changed dependency, output, command or params."""
    return bool(stage.changed(False, upstream))


def prepare(stage: Stage) -> bool:
    """Before the command: remove non-persistent outputs, then try DVC's run cache. True: restored from the
    run cache (record it, nothing to run); False: the command must run."""
    from dvc.stage.cache import RunCacheNotFoundError

    stage.remove_outs(ignore_remove=False, force=False)
    try:
        stage.repo.stage_cache.restore(stage)
        return True
    except RunCacheNotFoundError:
        stage.save_deps()
        return False


def record(stage: Stage) -> None:
    """After the command succeeded: hash and cache the outputs, save the run cache, write the stage's dvc.lock
    entry (what `Stage.run` then `dvc.repo.reproduce._reproduce_stage` do)."""
    no_cache_outs = any(not out.use_cache for out in stage.outs if not (out.is_metric or out.is_plot))
    stage.save(allow_missing=False, run_cache=not no_cache_outs)
    stage.commit(allow_missing=False)
    stage.dump(update_pipeline=False)


def command(stage: Stage) -> tuple[tuple[str, ...], dict[str, str], str]:
    """(argv, added environment, working directory) of the stage's command, as DVC's `cmd_run` builds them:
    the user's shell without rc files, DVC_ROOT and DVC_STAGE set; several commands run in turn, stopping at the
    first failure."""
    from dvc.env import DVC_ROOT, DVC_STAGE
    from dvc.stage.run import _enforce_cmd_list, _make_cmd, get_executable

    lines = _enforce_cmd_list(stage.cmd)
    script = lines[0] if len(lines) == 1 else "set -e\n" + "\n".join(lines)
    argv = _make_cmd(get_executable() or "/bin/sh", script)
    env = {DVC_ROOT: os.environ.get(DVC_ROOT, stage.repo.root_dir), DVC_STAGE: stage.addressing}
    return tuple(argv), env, stage.wdir


def lock_order(repo: Any) -> list[str]:
    """The stage names in dvc.lock, in file order (empty when there is none)."""
    from dvc.utils.serialize import load_yaml

    path = os.path.join(repo.root_dir, "dvc.lock")
    if not os.path.exists(path):
        return []
    return list((load_yaml(path) or {}).get("stages", {}))


def reorder_lock(repo: Any, before: list[str], plan: list[str]) -> None:
    """Put dvc.lock's entries in a deterministic order: the entries it had keep their places (as `dvc repro`
    keeps them), new ones follow in `plan` order (dvc.yaml's). Concurrent stages append themselves in the order
    they finish; sequential `dvc repro` appends in its plan order, which follows Python's per-process string hash
    seed (networkx walks sets), so even two plain `dvc repro` runs can order new entries differently."""
    from dvc.utils.serialize import modify_yaml

    path = os.path.join(repo.root_dir, "dvc.lock")
    if not os.path.exists(path):
        return
    with modify_yaml(path) as data:
        stages = data.get("stages") or {}
        names = [n for n in before if n in stages] + [n for n in plan if n in stages and n not in before]
        names += [n for n in stages if n not in names]
        if names == list(stages):
            return
        entries = {name: stages[name] for name in names}
        for name in list(stages):
            del stages[name]
        for name, entry in entries.items():
            stages[name] = entry
