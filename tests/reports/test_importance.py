"""Parameter importance: trials become a real in-memory Optuna study; PED-ANOVA ranks the knobs."""

import math

import numpy as np
import pandas as pd
import pytest

from udatune.reports.importance import label, param_importances, policy_features, study_from_trials


def test_policy_features_count_how_often_each_op_runs():
    aa = policy_features('autoaugment:[[["Rotate",0.5,3],["Color",0.2,8]],[["Rotate",0.3,1],["Solarize",1.0,2]]]')
    assert aa == pytest.approx({"op/Rotate": 0.4, "op/Color": 0.1, "op/Solarize": 0.5})
    assert policy_features("randaugment:2,9") == {"ra_n": 2.0, "ra_m": 9.0}
    assert policy_features("trivialaugment") == {} and policy_features("") == {}
    assert (label("lambda_u"), label("op/Rotate"), label("ra_m")) == ("λ", "Rotate (op)", "RA M")


def trials(n: int, seed: int = 0) -> pd.DataFrame:
    """A method whose gain depends on λ only (peak at λ = 1); τ, T and the ops are noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        lam = float(np.exp(rng.uniform(np.log(0.1), np.log(10))))
        ops = rng.choice(["Rotate", "Color", "Solarize"], size=2, replace=False)
        policy = f'autoaugment:[[["{ops[0]}",{rng.uniform():.2f},5],["{ops[1]}",{rng.uniform():.2f},5]]]'
        rows.append({"trial_id": f"t{i}", "method": "autoaugment", "seed": 0, "policy": policy, "lambda_u": lam,
                     "tau": rng.uniform(0.5, 0.95), "temperature": rng.uniform(0.2, 1.0), "tsa": "none",
                     "val_miou": 0.5, "gain": -abs(math.log(lam)) + rng.normal(0, 0.01)})
    return pd.DataFrame(rows)


def test_the_study_holds_one_trial_per_row_with_only_the_varied_params():
    frame = trials(8)
    study = study_from_trials(frame, "gain")
    assert len(study.trials) == 8
    assert [t.value for t in study.trials] == pytest.approx(list(frame["gain"]))
    params = set(study.trials[0].distributions)
    assert {"lambda_u", "tau", "temperature"} <= params and "tsa" not in params  # tsa never varied
    assert study.trials[0].distributions["lambda_u"].log
    assert any(p.startswith("op/") for p in params)


def test_the_knob_that_drives_the_gain_ranks_first():
    importance = param_importances(trials(30), "autoaugment")
    assert importance.objective == "gain" and importance.trials == 30
    assert next(iter(importance.values)) == "lambda_u"
    assert sum(importance.values.values()) == pytest.approx(1.0)


def test_too_few_trials_give_a_reason_instead_of_numbers():
    importance = param_importances(trials(2), "autoaugment")
    assert importance.values == {} and "at least 3" in importance.reason


def test_importance_comes_from_the_sweeps_own_study_scored_by_gain(tmp_path):
    """A real study in a sweep folder's journal: trials carry their Tune trial id; the gain in
    the rows (not the val mIoU the study holds) is what importance is computed against."""
    import optuna

    from udatune.tune import store
    from udatune.tune.sample import TUNE_TRIAL_ID

    frame = trials(30)
    storage = store.optuna_storage(str(tmp_path))
    study = optuna.create_study(study_name="autoaugment", storage=storage, direction="maximize")
    for row in frame.itertuples():
        trial = study.ask()
        trial.suggest_float("lambda_u", 0.1, 10, log=True)  # overwritten below with the row's value
        trial.set_user_attr(TUNE_TRIAL_ID, row.trial_id)
        study.tell(trial, 0.5)  # val mIoU: the same for every trial
    for row, trial in zip(frame.itertuples(), study.trials):
        assert trial.user_attrs[TUNE_TRIAL_ID] == row.trial_id
    frame["lambda_u"] = [t.params["lambda_u"] for t in study.trials]  # the gain follows the sampled λ
    frame["gain"] = [-abs(math.log(lam)) for lam in frame["lambda_u"]]
    rng = np.random.default_rng(1)
    noise = optuna.create_study(study_name="noise", storage=storage, direction="maximize")
    for row in frame.itertuples():
        trial = noise.ask()
        trial.suggest_float("lambda_u", 0.1, 10, log=True)
        trial.suggest_float("tau", 0.5, 0.95)
        trial.set_user_attr(TUNE_TRIAL_ID, row.trial_id)
        noise.tell(trial, float(rng.uniform()))

    studies = store.read_studies(str(tmp_path))
    assert set(studies) == {"autoaugment", "noise"} and len(studies["autoaugment"].trials) == 30
    importance = param_importances(frame, "autoaugment", studies["autoaugment"])
    assert importance.trials == 30 and list(importance.values) == ["lambda_u"]
    frame.loc[:26, "gain"] = float("nan")  # three trials scored: just enough
    assert param_importances(frame, "autoaugment", studies["autoaugment"]).trials == 3
    frame.loc[27, "gain"] = float("nan")
    assert "at least 3" in param_importances(frame, "autoaugment", studies["autoaugment"]).reason
