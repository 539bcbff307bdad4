"""The config tree validates itself where it is built: every section, every caller."""

import math

import pytest

from udatune.config import DataConfig, ModelConfig, TrainConfig, TrialConfig, UDAConfig, load_config
from udatune.errors import ConfigError


@pytest.mark.parametrize("build, needle", [
    (lambda: UDAConfig(lambda_u=math.inf), "lambda_u"),
    (lambda: UDAConfig(lambda_u=-0.5), "lambda_u"),
    (lambda: UDAConfig(tau=math.nan), "uda.tau"),
    (lambda: UDAConfig(temperature=0.0), "temperature"),
    (lambda: UDAConfig(mode="semi"), "uda.mode"),
    (lambda: UDAConfig(tsa="cubic"), "uda.tsa"),
    (lambda: UDAConfig(paste=1.5), "uda.paste"),
    (lambda: UDAConfig(paste=math.nan), "uda.paste"),
    (lambda: TrainConfig(num_workers=-1), "num_workers"),
    (lambda: TrainConfig(lr=math.inf), "train.lr"),
    (lambda: TrainConfig(device="tpu"), "train.device"),
    (lambda: TrainConfig(device="cuda:x"), "train.device"),
    (lambda: DataConfig(image_size=(100_000, 100_000)), "--image-size"),
    (lambda: TrialConfig(data=DataConfig(image_size=(8, 8))), "at least 32"),
    (lambda: DataConfig(labeled="0"), "--labeled"),
    (lambda: DataConfig(dataset="kitti"), "kitti"),
    (lambda: ModelConfig(name="segformr"), "segformr"),
    (lambda: ModelConfig(width=0), "model.width=0"),
    (lambda: ModelConfig(depth=0), "model.depth=0"),
    (lambda: ModelConfig(depth=6), "model.depth=6"),
])
def test_a_bad_value_is_refused_where_the_section_is_built(build, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        build()


def test_every_problem_of_a_section_is_listed_at_once():
    with pytest.raises(ConfigError) as err:
        TrialConfig().override({"train.steps": 0, "train.lr": -1})
    assert "train.steps" in str(err.value) and "train.lr" in str(err.value)


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:1"])
def test_device_names(device):
    assert TrainConfig(device=device).device == device


def test_overflowing_and_nested_values_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="train.steps"):
        TrialConfig.from_dict({"train": {"steps": math.inf}})
    with pytest.raises(ConfigError, match="model.name"):
        TrialConfig.from_dict({"model": {"name": ["unet"]}})


def test_a_yaml_error_names_its_line(tmp_path):
    config = tmp_path / "trial.yaml"
    config.write_text("train:\n  steps: 10\nuda:\n  tau: 0.9: x\n")
    with pytest.raises(ConfigError, match="line 4, column"):
        load_config(config)


@pytest.mark.parametrize("raw, key, expected", [
    ({"uda": {"class_adaptive": "yes"}}, ("uda", "class_adaptive"), True),
    ({"uda": {"align": "off"}}, ("uda", "align"), False),
    ({"train": {"amp": 0}}, ("train", "amp"), False),
    ({"train": {"steps": "40"}}, ("train", "steps"), 40),
    ({"train": {"steps": 40.0}}, ("train", "steps"), 40),
    ({"train": {"lr": "0.01"}}, ("train", "lr"), 0.01),
    ({"uda": {"tau": 1}}, ("uda", "tau"), 1.0),
    ({"data": {"labeled": 16}}, ("data", "labeled"), "16"),  # YAML reads 16 as an int
    ({"data": {"root": None}}, ("data", "root"), None),  # str | None
    ({"data": {"image_size": "90x120"}}, ("data", "image_size"), (90, 120)),  # tuple[int, int] | None
    ({"data": {"image_size": [90, 120]}}, ("data", "image_size"), (90, 120)),
    ({"data": {"image_size": None}}, ("data", "image_size"), None),
    ({"train": {"crop": "64,64"}}, ("train", "crop"), (64, 64)),
])
def test_values_are_coerced_by_their_annotation(raw, key, expected):
    section, name = key
    value = getattr(getattr(TrialConfig.from_dict(raw), section), name)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("raw, message", [
    ({"train": {"steps": 2.5}}, "train.steps=2.5 is not a valid int."),
    ({"train": {"steps": "many"}}, "train.steps='many' is not a valid int."),
    ({"train": {"amp": "maybe"}}, "train.amp='maybe' is not a valid bool."),
    ({"uda": {"tau": "high"}}, "uda.tau='high' is not a valid float."),
    ({"data": {"root": ["a"]}}, "data.root=['a'] is not a valid str | None."),
    ({"model": {"encoder": True}}, "model.encoder=True is not a valid str."),
    ({"train": {"steps": None}}, "train.steps may not be empty."),
    ({"data": {"image_size": "90"}}, "data.image_size='90' is not a size"),
    ({"train": {"crop": [64, 0]}}, "train.crop=[64, 0] is not a size"),
])
def test_a_value_of_the_wrong_type_is_a_config_error_naming_its_key(raw, message):
    with pytest.raises(ConfigError) as err:
        TrialConfig.from_dict(raw, source="trial.yaml")
    assert str(err.value).startswith(f"trial.yaml: {message}")


@pytest.mark.parametrize("kind", ["Optional[int]", "int | None"])
def test_an_optional_annotation_in_either_spelling_takes_none_or_its_type(kind):
    from typing import Optional  # noqa: F401  (named in the annotations under test)

    from udatune.config import _coerce

    annotation = eval(kind)
    assert _coerce(None, annotation, "src", "x.n") is None and _coerce("7", annotation, "src", "x.n") == 7
    with pytest.raises(ConfigError, match=r"src: x\.n='seven' is not a valid"):
        _coerce("seven", annotation, "src", "x.n")


@pytest.mark.parametrize("policy, needle", [
    ("fancyaugment", "fancyaugment"),
    ("randaugment:2,99", "99"),
    ('autoaugment:[[["Spin",0.5,3]]]', "Spin"),
    ("gone.json", "gone.json"),
])
def test_a_bad_policy_is_refused_when_the_config_is_built(policy, needle):
    with pytest.raises(ConfigError, match=r"uda\.policy") as err:
        TrialConfig().override({"uda.policy": policy})
    assert needle in str(err.value)
    with pytest.raises(ConfigError, match=r"uda\.policy"):
        UDAConfig(policy=policy)


def test_the_policy_is_kept_as_its_string_and_parsed_once(tmp_path):
    from udatune.augment.policy import RandAugment

    cfg = TrialConfig().override({"uda.policy": "randaugment:3,7"})
    assert cfg.to_dict()["uda"]["policy"] == "randaugment:3,7"  # files and sweep tables keep the string
    assert cfg.uda.parsed_policy == RandAugment(3, 7) and cfg.uda.parsed_policy is cfg.uda.parsed_policy
    assert TrialConfig.from_dict(cfg.to_dict()) == cfg
    file = tmp_path / "best_policy.json"
    file.write_text('{"type": "randaugment", "n": 1, "m": 5}')
    assert UDAConfig(policy=str(file)).parsed_policy == RandAugment(1, 5)
