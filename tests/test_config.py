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
