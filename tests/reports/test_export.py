"""export-policy: the best policy as udatune JSON and as an albumentations pipeline that loads,
and its UDA settings as a config udatune reads back."""

import json

import albumentations as A
import numpy as np

from udatune.augment.policy import parse_policy
from udatune.config import load_config
from udatune.reports.export import FILES, export_policy
from udatune.reports.load import load_sweep
from udatune.reports.report import build_report

BEST = 'autoaugment:[[["Rotate",0.9,2],["Solarize",0.1,9]]]'  # trial aa4: best paired val gain (+0.06)


def test_the_best_search_trial_is_exported_when_nothing_is_confirmed(sweep_writer, tmp_path):
    exported = export_policy(build_report(load_sweep(str(sweep_writer.finished()))), tmp_path / "policy")
    assert exported.choice.trial_id == "aa4" and not exported.choice.confirmed
    assert "not confirmed" in exported.choice.evidence
    assert sorted(p.name for p in exported.paths.values()) == sorted(FILES)

    policy = parse_policy(str(exported.paths["best_policy.json"]))  # a .json file is a policy spec
    assert policy == parse_policy(BEST)

    pipeline = A.load(str(exported.paths["albumentations.json"]))
    image = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    assert pipeline(image=image)["image"].shape == image.shape

    uda = load_config(exported.paths["uda_config.yaml"]).uda
    assert (uda.lambda_u, uda.tau, uda.temperature, uda.tsa, uda.policy) == (0.8, 0.65, 0.5, "none", parse_policy(BEST).to_string())

    settings = json.loads(exported.paths["uda_settings.json"].read_text())
    assert settings["source"]["trial_id"] == "aa4" and settings["policy"]["not_in_albumentations"] == ["Rotate"]


def test_a_confirmed_configuration_is_preferred_and_says_so(sweep_writer, tmp_path):
    path = sweep_writer.finished()
    sweep_writer.confirmation(path)
    exported = export_policy(build_report(load_sweep(str(path))), tmp_path / "policy")
    assert exported.choice.confirmed and exported.choice.trial_id == "aa4"
    assert exported.choice.evidence.startswith("confirmed: test gain +0.0400")
    assert json.loads(exported.paths["uda_settings.json"].read_text())["source"]["confirmed"] is True
