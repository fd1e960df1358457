"""Executor settings (validated like every params section) and the local render fan-out's bytes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from miad.config import ConfigError, load_params
from miad.executors import load_executor_config
from miad.executors.base import Task, TaskError
from miad.executors.local import LocalExecutor
from miad.executors.wait import run_tasks
from tests.conftest import tiny_params_dict
from tests.pipeline_slice import SCENARIO, prepare_slice, run


def _params(tmp_path: Path, executor: object) -> Path:
    data = tiny_params_dict()
    data["executor"] = executor
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_executor_section_defaults_and_overrides(tmp_path: Path) -> None:
    path = _params(tmp_path, {"kind": "slurm", "slurm": {"partition": "gpu", "gpus_per_task": 1}})
    cfg = load_executor_config(path)
    assert (cfg.kind, cfg.workers, cfg.slurm.partition, cfg.slurm.gpus_per_task) == ("slurm", 1, "gpu", 1)
    assert load_executor_config(path, kind="local", workers=3).workers == 3
    assert load_params(path).seed == tiny_params_dict()["seed"]  # the section is allowed beside the others


@pytest.mark.parametrize(
    ("executor", "message"),
    [
        ({"kind": "pbs"}, "executor.kind: value 'pbs' is not allowed"),
        ({"workers": 0}, "executor.workers: value 0 is out of range"),
        ({"slurm": {"mem": 4}}, "executor.slurm: unknown key(s) ['mem']"),
        ({"slurm": {"time_min": "1h"}}, "executor.slurm.time_min"),
        ("slurm", "executor: expected a mapping"),
    ],
)
def test_bad_executor_values_are_named(tmp_path: Path, executor: object, message: str) -> None:
    path = _params(tmp_path, executor)
    for load in (load_executor_config, load_params):
        with pytest.raises(ConfigError) as info:
            load(path)
        assert message in str(info.value) and str(path) in str(info.value)


def test_run_tasks_retries_a_failing_task_then_names_it_with_its_log(tmp_path: Path) -> None:
    counter = tmp_path / "attempts"
    flaky = Task("flaky", ("sh", "-c", f"echo x >> {counter}; [ $(wc -l < {counter}) -ge 2 ]"), tmp_path)
    broken = Task("broken", ("sh", "-c", "echo 'no luck here' >&2; exit 5"), tmp_path)
    run_tasks(LocalExecutor(), [flaky], retries=1, limit=2, poll_seconds=0.05, progress=False)
    assert counter.read_text().count("x") == 2
    with pytest.raises(TaskError) as info:
        run_tasks(LocalExecutor(), [broken], retries=2, limit=2, poll_seconds=0.05, progress=False)
    assert "broken: failed (exit status 5) after 3 attempt(s)" in str(info.value)
    assert "no luck here" in str(info.value)


def test_a_task_whose_output_is_incomplete_counts_as_failed(tmp_path: Path) -> None:
    task = Task("shard", ("true",), tmp_path)
    with pytest.raises(TaskError, match="output incomplete"):
        run_tasks(
            LocalExecutor(), [task], retries=0, limit=1, finished=lambda t: False, poll_seconds=0.05, progress=False
        )


@pytest.mark.slow
def test_two_local_render_workers_write_the_same_shards_as_one_process(tmp_path: Path) -> None:
    repo = prepare_slice(tmp_path / "repo")
    base = ["miad", "render", "--scenario", SCENARIO, "--no-progress"]
    run([*base, "--renders", "one"], repo)
    log = run([*base, "--renders", "two", "--workers", "2"], repo)
    assert "4 shards" in log  # each shard its own `miad render --shard` process

    def tree(root: Path) -> dict[str, bytes]:
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != "provenance.json")
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in files}

    assert tree(repo / "one") == tree(repo / "two")
    with pytest.raises(AssertionError, match=r"--shard 'test/x': expected <split>/<index>"):
        run([*base, "--renders", "two", "--shard", "test/x"], repo)
