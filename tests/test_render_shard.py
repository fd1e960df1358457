"""Shard planning, resume and atomicity, with a fake renderer (the real one is tested in test_render_*)."""

import pytest

from miad.config import load_params
from miad.data.manifest import read_manifest
from miad.render.shard import plan_shards, plan_split, render_dataset
from tests.conftest import tiny_params_dict

SCENARIO = "electrical_insulator"


def test_plans_are_deterministic_and_balanced(tiny_params):
    test = plan_split(tiny_params, "main", SCENARIO, "test")
    assert plan_split(tiny_params, "main", SCENARIO, "test") == test
    assert sum(p.label for p in test) == 3 and len(test) == 6
    assert [p.index for p in test] == list(range(6))
    assert len({p.seed for p in test}) == 6
    assert all(p.label == 0 for p in plan_split(tiny_params, "main", SCENARIO, "train"))


def test_seeds_do_not_depend_on_shard_size(tmp_path, tiny_params):
    path = tmp_path / "other.yaml"
    import yaml

    path.write_text(yaml.safe_dump(tiny_params_dict(shard_size=2)), encoding="utf-8")
    other = load_params(path)
    seeds = [p.seed for t in plan_shards(tiny_params, "main", SCENARIO) for p in t.plans]
    assert seeds == [p.seed for t in plan_shards(other, "main", SCENARIO) for p in t.plans]


def test_rerun_skips_finished_shards_and_is_byte_identical(tmp_path, tiny_params, fake_factory):
    renders = tmp_path / "r"
    first = render_dataset(tiny_params, "main", SCENARIO, renders, renderer_factory=fake_factory, progress=False)
    assert first.rendered_shards == 4 and first.rendered_images == 11
    files = {p: p.read_bytes() for p in sorted(renders.rglob("*")) if p.is_file()}
    again = render_dataset(tiny_params, "main", SCENARIO, renders, renderer_factory=fake_factory, progress=False)
    assert again.rendered_images == 0 and again.skipped_shards == 4
    assert len(fake_factory.made) == 1  # no renderer was even built the second time
    assert files == {p: p.read_bytes() for p in sorted(renders.rglob("*")) if p.is_file()}
    fresh = tmp_path / "fresh"
    render_dataset(tiny_params, "main", SCENARIO, fresh, renderer_factory=fake_factory, progress=False)
    assert {p.relative_to(renders): b for p, b in files.items()} == {
        p.relative_to(fresh): p.read_bytes() for p in sorted(fresh.rglob("*")) if p.is_file()
    }


def test_corrupt_shard_is_rendered_again(tmp_path, tiny_params, fake_factory):
    renders = tmp_path / "r"
    render_dataset(tiny_params, "main", SCENARIO, renders, renderer_factory=fake_factory, progress=False)
    shard = renders / "main" / SCENARIO / "test" / "shard-00001.zip"
    good = shard.read_bytes()
    shard.write_bytes(good[: len(good) // 2])
    report = render_dataset(tiny_params, "main", SCENARIO, renders, renderer_factory=fake_factory, progress=False)
    assert report.rendered_shards == 1 and shard.read_bytes() == good


def test_interrupted_shard_leaves_nothing_under_its_name(tmp_path, tiny_params, fake_factory):
    class Boom(RuntimeError):
        pass

    def failing(scenario, factors, cfg, temp):
        renderer = fake_factory(scenario, factors, cfg, temp)
        original = renderer.render

        def render(plan):
            if plan.split == "train" and plan.index == 4:
                raise Boom
            return original(plan)

        renderer.render = render
        return renderer

    renders = tmp_path / "r"
    with pytest.raises(Boom):
        render_dataset(tiny_params, "main", SCENARIO, renders, renderer_factory=failing, progress=False)
    train = renders / "main" / SCENARIO / "train"
    assert sorted(p.name for p in train.iterdir()) == ["shard-00000.zip"]  # shard 1 never appeared
    report = render_dataset(tiny_params, "main", SCENARIO, renders, renderer_factory=fake_factory, progress=False)
    assert report.skipped_shards == 1 and read_manifest(train).count == 5


def test_changed_params_rerender_and_stale_shards_go(tmp_path, tiny_params, fake_factory):
    import yaml

    renders = tmp_path / "r"
    render_dataset(tiny_params, "main", SCENARIO, renders, renderer_factory=fake_factory, progress=False)
    path = tmp_path / "smaller.yaml"
    path.write_text(yaml.safe_dump(tiny_params_dict(n_train=2, samples=8)), encoding="utf-8")
    report = render_dataset(load_params(path), "main", SCENARIO, renders, renderer_factory=fake_factory, progress=False)
    assert report.skipped_shards == 0  # samples changed: every spec hash changed
    assert sorted(p.name for p in (renders / "main" / SCENARIO / "train").iterdir()) == [
        "manifest.json",
        "shard-00000.zip",
    ]
