from pathlib import Path

import pytest
import yaml

from miad.config import ConfigError, load_params, to_dict
from tests.conftest import REPO, tiny_params_dict


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_repo_params_load_both_profiles():
    params = load_params(REPO / "params.yaml")
    assert params.profile == "smoke"
    assert params.profiles["paper"].render.resolution == 512
    assert params.profiles["paper"].train.patchcore.backbone == "wide_resnet50_2"
    assert load_params(REPO / "params.yaml", profile="paper").active.render.n_train == 10000


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["smoke"]["render"].update(n_trian=3), r"smoke\.render: unknown key\(s\) \['n_trian'\]"),
        (lambda d: d["paper"]["train"]["patchcore"].update(layers="2"), r"patchcore\.layers: expected a list"),
        (lambda d: d["smoke"]["render"].update(samples=0), r"render\.samples: value 0 is out of range, expected >= 1"),
        (lambda d: d["smoke"]["render"].update(denoise="yes"), r"smoke\.render\.denoise: expected true or false"),
        (lambda d: d["smoke"]["train"].update(device="tpu"), r"smoke\.train\.device: value 'tpu' is not allowed"),
        (lambda d: d["smoke"]["train"]["patchcore"].update(coreset_ratio=0), r"coreset_ratio: value 0.0 is out"),
        (lambda d: d.update(profile="huge"), r"profile: value 'huge' is not allowed"),
        (lambda d: d.update(scenarios=["wind_turbin"]), r"scenarios: unknown name\(s\) \['wind_turbin'\]"),
        (lambda d: d.update(methods=[], unified_methods=[]), r"methods and unified_methods are both empty"),
        (lambda d: d.update(methods=["uniad"]), r"methods: unknown name\(s\) \['uniad'\]"),
        (lambda d: d.update(unified_methods=["rd"]), r"unified_methods: unknown name\(s\) \['rd'\]"),
        (lambda d: d.update(methods=["rd"]), r"table7\.methods: \['patchcore', 'fastflow', 'draem'\] not in"),
        (lambda d: d["table7"].update(fractions=[0.5, 1.0]), r"table7\.fractions: 1\.0 is the main"),
        (lambda d: d["table7"].update(fractions=[0.0]), r"table7\.fractions\[0\]: value 0\.0 is out of range"),
        (lambda d: d.update(seed=-1), r"seed: expected a non-negative integer"),
        (lambda d: d["ablation"].update(variants=["main"]), r"ablation\.variants: \['main'\] not allowed"),
        (lambda d: d["ablation"].update(scenarios=["metal_welding"]), r"ablation\.scenarios: \['metal_welding'\]"),
        (lambda d: d["ablation"].update(methods=["uniad"]), r"ablation\.methods: \['uniad'\] not allowed"),
        (lambda d: d.update(extra=1), r"unknown top-level key\(s\) \['extra'\]"),
        (lambda d: d.pop("paper"), r"missing key\(s\) \['paper'\]"),
        (lambda d: d.update(extra_training_seeds=[0]), r"extra_training_seeds: expected a list of positive integers"),
        (lambda d: d.update(extra_training_seeds=[1, 1]), r"extra_training_seeds: seeds repeat in \[1, 1\]"),
        (lambda d: d.update(extra_training_seeds="1"), r"extra_training_seeds: expected a list"),
        (lambda d: d["smoke"]["evaluate"].update(bootstrap_resamples=10), r"bootstrap_resamples: value 10 is out"),
        (lambda d: d["smoke"]["evaluate"].update(confidence=1.5), r"evaluate\.confidence: value 1\.5 is out"),
        (lambda d: d["dataset"].update(source="mvtec"), r"dataset\.source: value 'mvtec' is not allowed"),
        (lambda d: d["dataset"].update(root="x"), r"dataset: unknown key\(s\) \['root'\]"),
    ],
)
def test_bad_params_name_key_value_and_rule(tmp_path, edit, message):
    data = tiny_params_dict()
    edit(data)
    with pytest.raises(ConfigError, match=message):
        load_params(write(tmp_path, data))


def test_error_names_the_file(tmp_path):
    data = tiny_params_dict()
    data["smoke"]["render"]["resolution"] = "big"
    path = write(tmp_path, data)
    with pytest.raises(ConfigError, match=str(path)):
        load_params(path)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("profile: [", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(tmp_path / "bad.yaml")


def test_optional_int_accepts_null(tmp_path):
    data = tiny_params_dict()
    data["smoke"]["train"]["patchcore"]["max_train_images"] = None
    assert load_params(write(tmp_path, data)).active.train.patchcore.max_train_images is None


def test_to_dict_round_trips(tmp_path):
    params = load_params(write(tmp_path, tiny_params_dict()))
    assert to_dict(params.active)["train"]["patchcore"]["layers"] == [2, 3]


def test_training_seeds_derive_their_own_root(tmp_path):
    data = tiny_params_dict()
    data["extra_training_seeds"] = [1, 2]
    params = load_params(write(tmp_path, data))
    assert params.training_seeds == (0, 1, 2)
    assert params.for_training_seed(0) is params
    roots = {params.for_training_seed(k).seed for k in (0, 1, 2)}
    assert len(roots) == 3 and params.for_training_seed(1).scenarios == params.scenarios
    assert params.for_training_seed(1).seed == load_params(write(tmp_path, data)).for_training_seed(1).seed
    del data["extra_training_seeds"]  # optional: older params files have none
    assert load_params(write(tmp_path, data)).training_seeds == (0,)
