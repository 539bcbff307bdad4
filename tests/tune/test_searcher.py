"""The sweep's searcher: each searched method starts from the default recipe, in its own terms."""

import optuna
import pytest

from udatune.augment.policy import AutoAugment, parse_policy
from udatune.config import TrialConfig
from udatune.errors import ConfigError
from udatune.tune.sample import default_point, sampling_note, shared_methods, startup_trials
from udatune.tune.searcher import SweepSearcher
from udatune.tune.settings import SweepSettings, summary_line
from udatune.tune.space import load_space, parse_space

optuna.logging.set_verbosity(optuna.logging.WARNING)

KNOBS = ("uda.lambda_u", "uda.tau", "uda.temperature", "uda.tsa", "uda.ema_decay", "uda.class_adaptive", "uda.class_balance", "uda.align")


def first_trials(spaces, recipe: TrialConfig, trials: int = 6) -> dict[str, dict]:
    settings = SweepSettings(spaces=tuple(spaces), name="s", storage="/tmp", trials=trials)
    searcher = SweepSearcher(settings, recipe=recipe)
    firsts = {}
    for i in range(settings.total_trials):
        config = searcher.suggest(f"t{i}")
        if config["method"] in firsts or "overrides" not in config or config["method"] in ("supervised", "uda-default"):
            continue
        firsts[config["method"]] = config["overrides"]
    return firsts


def test_each_searched_methods_first_trial_is_the_default_recipe():
    recipe = TrialConfig()
    spaces = [load_space(n) for n in ("autoaugment", "randaugment", "trivialaugment", "cutmix")]
    firsts = first_trials(spaces, recipe)
    assert set(firsts) == {"autoaugment", "randaugment", "trivialaugment", "cutmix"}
    for overrides in firsts.values():
        for key in KNOBS:
            section, name = key.split(".")
            assert overrides[key] == getattr(getattr(recipe, section), name), key
    assert firsts["randaugment"]["uda.policy"] == recipe.uda.policy  # exactly the default, randaugment:2,4
    aa = parse_policy(firsts["autoaugment"]["uda.policy"])
    assert isinstance(aa, AutoAugment)
    steps = [step for sub in aa.subpolicies for step in sub]
    assert all(p == 1.0 and m == 4 for _, p, m in steps) and len({op for op, _, _ in steps}) == len(steps)
    assert firsts["trivialaugment"]["uda.policy"].startswith("trivialaugment")
    assert parse_policy(firsts["cutmix"]["uda.policy"]) == parse_policy(load_space("cutmix").policy.policy)  # a fixed family's own


def test_the_first_trial_follows_the_sweeps_own_recipe_and_stays_inside_the_space():
    recipe = TrialConfig().override({"uda.lambda_u": 2.0, "uda.tau": 0.65, "uda.policy": "randaugment:1,7"})
    space = parse_space({"policy": {"family": "randaugment", "n": {"low": 2, "high": 3}, "m": {"low": 1, "high": 10}},
                         "lambda_u": {"low": 0.3, "high": 3.0}, "tau": [0.0, 0.7, 0.9]}, default_method="ra")
    point = default_point(space, recipe)
    assert point == {"lambda_u": 2.0, "tau": 0.7, "ra_n": 2, "ra_m": 7}  # τ and N moved to the nearest allowed value
    assert first_trials([space], recipe, trials=2)["ra"]["uda.policy"] == "randaugment:2,7"


def test_later_trials_are_sampled():
    settings = SweepSettings(spaces=(load_space("randaugment"),), name="s", storage="/tmp", trials=3, baselines=False)
    searcher = SweepSearcher(settings)
    policies = [searcher.suggest(f"t{i}")["overrides"] for i in range(3)]
    assert policies[0]["uda.policy"] == "randaugment:2,4"
    assert any(p != policies[0] for p in policies[1:])


@pytest.mark.parametrize("trials, startup", [(1, 2), (2, 2), (6, 2), (7, 3), (12, 4), (30, 10), (100, 10)])
def test_tpe_start_up_is_sized_to_the_methods_budget(trials, startup):
    assert startup_trials(trials) == startup


def test_the_summary_says_when_a_budget_never_leaves_random_sampling():
    space = load_space("autoaugment")
    assert "never leaves random sampling" in sampling_note(space, 2)
    assert "then TPE" in sampling_note(space, 12)
    assert sampling_note(space, 2, shared=True).startswith("2 trials: the default recipe (the uda-default baseline's run, not trained again), then random")


# --- a first trial that is the default-UDA baseline's run, shared rather than run twice ----------


def test_the_shipped_randaugment_first_trial_is_the_default_baseline_and_is_shared():
    recipe = TrialConfig()
    spaces = tuple(load_space(n) for n in ("autoaugment", "randaugment"))
    assert shared_methods(spaces, recipe, {"autoaugment": 2, "randaugment": 2}) == ("randaugment",)
    assert shared_methods(spaces, recipe, {"autoaugment": 2, "randaugment": 0}) == ()  # no trial of its own to share
    # Another recipe RandAugment cannot express exactly (N is bounded to [2, 3]): nothing is shared.
    narrow = parse_space({"policy": {"family": "randaugment", "n": {"low": 2, "high": 3}, "m": {"low": 1, "high": 10}}}, default_method="ra")
    assert shared_methods((narrow,), TrialConfig().override({"uda.policy": "randaugment:1,7"}), {"ra": 1}) == ()


def shared_settings(trials: int = 4, **extra) -> SweepSettings:
    spaces = tuple(load_space(n) for n in ("autoaugment", "randaugment"))
    return SweepSettings(spaces=spaces, name="s", storage="/tmp", trials=trials, shared=("randaugment",), **extra)


def test_a_shared_first_trial_is_not_queued_and_the_counts_say_so():
    settings = shared_settings()
    assert settings.total_trials == 4 - 1 + 2
    assert "1 of them the default-UDA baseline's run" in summary_line(settings)
    searcher = SweepSearcher(settings)
    configs = [searcher.suggest(f"t{i}") for i in range(settings.total_trials)]
    assert searcher.suggest("t-extra") == searcher.FINISHED
    assert [c["method"] for c in configs] == ["supervised", "uda-default", "autoaugment", "autoaugment", "randaugment"]
    assert configs[-1]["overrides"]["uda.policy"] != TrialConfig().uda.policy  # its one run is a sampled trial
    with pytest.raises(ConfigError, match="cannot share"):
        shared_settings(baselines=False).check()


def test_the_baselines_result_is_told_to_the_shared_methods_study_once():
    settings = shared_settings()
    searcher = SweepSearcher(settings)
    ids = [f"t{i}" for i in range(settings.total_trials)]
    configs = {i: searcher.suggest(i) for i in ids}
    baseline = next(i for i, c in configs.items() if c["method"] == "uda-default")
    searcher.on_trial_complete(baseline, {"val_miou": 0.42, "step": 100})
    searcher.on_trial_complete(baseline, {"val_miou": 0.42, "step": 100})  # a resumed sweep may report it again
    study = optuna.load_study(study_name="randaugment", storage=searcher.storage)
    told = [t for t in study.get_trials() if t.user_attrs.get("tune_trial_id") == baseline]
    assert len(told) == 1 and told[0].value == pytest.approx(0.42) and told[0].state == optuna.trial.TrialState.COMPLETE
    assert told[0].params == default_point(load_space("randaugment"), TrialConfig())
    other = optuna.load_study(study_name="autoaugment", storage=searcher.storage)
    assert not any(t.user_attrs.get("tune_trial_id") == baseline for t in other.get_trials())


def test_a_failed_baseline_is_told_to_no_study(tmp_path):
    settings = shared_settings()
    searcher = SweepSearcher(settings)
    configs = {f"t{i}": searcher.suggest(f"t{i}") for i in range(settings.total_trials)}
    baseline = next(i for i, c in configs.items() if c["method"] == "uda-default")
    searcher.on_trial_complete(baseline, {"step": 10}, error=True)
    study = optuna.load_study(study_name="randaugment", storage=searcher.storage)
    assert all(t.user_attrs.get("tune_trial_id") != baseline for t in study.get_trials())
    # Its state still pickles and comes back (Tune saves it with the experiment).
    searcher.save(str(tmp_path / "searcher.pkl"))
    restored = SweepSearcher(shared_settings())
    restored.restore(str(tmp_path / "searcher.pkl"))
    assert restored.shared_trial == baseline and set(restored.shared) == {"randaugment"}
