"""Sampling: every policy a searcher proposes is a valid policy inside the space's bounds.

Real Optuna studies on in-memory storage, and Ray Tune's real `OptunaSearch` (no cluster needed
to ask it for configs).
"""

import optuna
import pytest

from udatune.augment.ops import OPS
from udatune.augment.policy import AutoAugment, RandAugment, TrivialAugment, parse_policy
from udatune.config import TrialConfig
from udatune.tune.sample import SpaceSampler, make_searcher
from udatune.tune.space import load_space, param_key, parse_space

optuna.logging.set_verbosity(optuna.logging.WARNING)


def check_overrides(overrides: dict, space) -> None:
    # Applies cleanly to a trial config, so the trial would start.
    TrialConfig().override(overrides)
    for name, param in space.params.items():
        value = overrides[param_key(name)]
        if param.kind == "choice":
            assert value in param.choices
        elif param.kind == "fixed":
            assert value == param.value
        else:
            assert param.low <= value <= param.high
    policy = parse_policy(overrides["uda.policy"])
    assert parse_policy(policy.to_string()) == policy  # the compact string round-trips
    if space.policy.family == "autoaugment":
        assert isinstance(policy, AutoAugment)
        assert len(policy.subpolicies) == space.policy.subpolicies
        for sub in policy.subpolicies:
            assert len(sub) == space.policy.ops_per_subpolicy
            for op, probability, magnitude in sub:
                assert op in space.policy.ops and op in OPS
                assert 0.0 <= probability <= 1.0 and 0 <= magnitude <= 10
    elif space.policy.family == "randaugment":
        assert isinstance(policy, RandAugment) and 1 <= policy.n <= 3 and 1 <= policy.m <= 10
    elif space.policy.family == "fixed":
        assert policy == parse_policy(space.policy.policy)
    else:
        assert isinstance(policy, TrivialAugment)


@pytest.mark.parametrize("name", ["autoaugment", "randaugment", "trivialaugment", "cutmix"])
def test_an_optuna_study_samples_only_valid_policies(name):
    space = load_space(name)
    sampler = SpaceSampler(space)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=1, n_startup_trials=5))
    for i in range(30):
        trial = study.ask()
        overrides = sampler(trial)["overrides"]
        check_overrides(overrides, space)
        study.tell(trial, overrides["uda.lambda_u"] % 1.0)  # any score: TPE moves past start-up
    assert len(study.trials) == 30
    if name == "autoaugment":
        # the K × 2 × (op, probability, magnitude) are real Optuna parameters
        assert {"sp0_op0", "sp0_p0", "sp0_m0", "sp2_op1"} <= set(study.trials[-1].params)


@pytest.mark.parametrize("name", ["autoaugment", "randaugment"])
def test_ray_tunes_optuna_search_proposes_valid_policies(name):
    space = load_space(name)
    searcher = make_searcher(space, seed=3)
    seen = set()
    for i in range(30):
        config = searcher.suggest(f"trial_{i}")
        check_overrides(config["overrides"], space)
        seen.add(config["overrides"]["uda.policy"])
        searcher.on_trial_complete(f"trial_{i}", {"val_miou": 0.1 + 0.01 * (i % 7), "training_iteration": 1})
    assert len(seen) >= 10  # it explores (RandAugment has only 3 × 10 policies)


def test_a_restricted_space_stays_inside_its_bounds():
    space = parse_space(
        {
            "policy": {"family": "autoaugment", "subpolicies": 1, "ops_per_subpolicy": 3, "ops": ["Rotate", "CutMix"],
                       "probability": [0.5], "magnitude": {"low": 4, "high": 4}},
            "lambda_u": 2.0, "tau": [0.6, 0.7], "temperature": {"low": 0.5, "high": 0.5}, "tsa": "linear",
            "trial": {"uda.loss": "ce"},
        }
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        overrides = SpaceSampler(space)(study.ask())["overrides"]
        (sub,) = parse_policy(overrides["uda.policy"]).subpolicies
        assert [(p, m) for _, p, m in sub] == [(0.5, 4)] * 3 and {op for op, _, _ in sub} <= {"Rotate", "CutMix"}
        assert overrides["uda.lambda_u"] == 2.0 and overrides["uda.tau"] in (0.6, 0.7)
        assert overrides["uda.temperature"] == 0.5 and overrides["uda.tsa"] == "linear"
        assert overrides["uda.loss"] == "ce"


def test_the_same_seed_samples_the_same_trials():
    space = load_space("autoaugment")
    a, b = make_searcher(space, seed=7), make_searcher(space, seed=7)
    assert [a.suggest(f"t{i}") for i in range(5)] == [b.suggest(f"t{i}") for i in range(5)]
