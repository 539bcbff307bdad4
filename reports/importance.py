"""Which knobs mattered: Optuna's parameter importance over a method's trials.

A sweep keeps each searched method's real Optuna study in its folder (store.optuna_journal);
its trials carry the parameters Optuna sampled and the Tune trial they became. Importance is
computed from them against each trial's paired gain (the value the study holds is val mIoU,
which mixes in the seed's baseline). A sweep without a study — from an udatune before the
studies were kept, or on an object store — gets a study rebuilt from its rows instead, with
these features:

The knobs are λ, τ, T and the TSA schedule, plus features of the policy: for RandAugment its N
and M; for AutoAugment, per op, how often the policy applies it per image (the sum of its
probabilities over the sub-policies, divided by their number) — "the ops" as one number each,
comparable across policies whatever slot an op was sampled into.

`optuna.importance.get_param_importances` ranks the parameters with PED-ANOVA: it needs
nothing beyond Optuna (fANOVA and mean-decrease-impurity need scikit-learn) and copes with
small studies.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable

import pandas as pd

from udatune.reports.stats import score_column

MIN_TRIALS = 3
NUMERIC = ("lambda_u", "tau", "temperature")
LABELS = {"lambda_u": "λ", "tau": "τ", "temperature": "T", "tsa": "TSA", "ra_n": "RA N", "ra_m": "RA M"}


def _randaugment(policy) -> dict[str, float]:
    return {"ra_n": float(policy.n), "ra_m": float(policy.m)}


def _autoaugment(policy) -> dict[str, float]:
    weights: dict[str, float] = {}
    for sub in policy.subpolicies:
        for name, probability, _ in sub:
            weights[f"op/{name}"] = weights.get(f"op/{name}", 0.0) + probability / len(policy.subpolicies)
    return weights


POLICY_FEATURES: dict[str, Callable[[object], dict[str, float]]] = {
    "randaugment": _randaugment,
    "autoaugment": _autoaugment,
}


def policy_features(spec: str) -> dict[str, float]:
    """Numeric features of a policy string (empty for policies without searched parts)."""
    from udatune.augment.policy import parse_policy

    if not spec:
        return {}
    policy = parse_policy(spec)
    return POLICY_FEATURES.get(policy.type, lambda p: {})(policy)


def label(param: str) -> str:
    return LABELS.get(param, param.removeprefix("op/") + " (op)" if param.startswith("op/") else param)


@dataclass(frozen=True)
class Importance:
    """A method's parameter importances (summing to 1), or why there are none."""

    method: str
    values: dict[str, float]  # parameter -> importance, largest first
    trials: int
    objective: str  # "gain" or "val_miou"
    reason: str = ""  # set when values is empty


def features(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per trial: λ, τ, T, TSA and the policy features (missing op = 0)."""
    rows = []
    for row in trials.itertuples():
        values: dict[str, object] = {k: float(getattr(row, k)) for k in NUMERIC}
        # Searched only by spaces for models with an encoder; absent from tables of older sweeps.
        values["encoder_lr_mult"] = float(getattr(row, "encoder_lr_mult", 1.0))
        values["tsa"] = str(row.tsa)
        values.update(policy_features(str(row.policy)))
        rows.append(values)
    frame = pd.DataFrame(rows, index=trials.index)
    ops = [c for c in frame.columns if c.startswith("op/")]
    frame[ops] = frame[ops].fillna(0.0)
    return frame


def study_from_trials(trials: pd.DataFrame, objective: str):
    """An in-memory Optuna study holding one completed trial per row (varying params only)."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    table = features(trials)
    distributions = {}
    for column in table.columns:
        values = table[column]
        if values.nunique(dropna=True) < 2 or values.isna().any():
            continue  # constant (or not defined for every trial): nothing to attribute
        if column == "tsa":
            distributions[column] = CategoricalDistribution(sorted(values.unique()))
        else:
            low, high = float(values.min()), float(values.max())
            distributions[column] = FloatDistribution(low, high, log=column == "lambda_u" and low > 0)
    study = optuna.create_study(direction="maximize")
    for index, row in table.iterrows():
        params = {k: (row[k] if k == "tsa" else float(row[k])) for k in distributions}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=float(trials.loc[index, objective])))
    return study


def study_from_sweep(study, trials: pd.DataFrame, objective: str):
    """The sweep's own study, its completed trials scored by ``objective`` (the paired gain)
    instead of the val mIoU it holds; trials without a score are left out."""
    import optuna

    from udatune.tune.sample import TUNE_TRIAL_ID

    scores = dict(zip(trials["trial_id"], trials[objective]))
    scored = optuna.create_study(direction="maximize")
    for trial in study.get_trials(deepcopy=False):
        score = scores.get(trial.user_attrs.get(TUNE_TRIAL_ID))
        if trial.params and score is not None and math.isfinite(score):
            scored.add_trial(optuna.trial.create_trial(params=trial.params, distributions=trial.distributions, value=float(score)))
    return scored


def param_importances(trials: pd.DataFrame, method: str, study=None) -> Importance:
    """PED-ANOVA importances over the method's trials with a score: from the sweep's own
    Optuna ``study`` of the method when there is one, else from a study rebuilt from the rows."""
    import optuna

    objective = score_column(trials)
    group = trials[(trials["method"] == method)].dropna(subset=[objective])
    group = group[group[objective].map(math.isfinite)]
    if study is not None:
        study = study_from_sweep(study, group, objective)
        if len(study.trials) < MIN_TRIALS:
            return Importance(method, {}, len(study.trials), objective, f"needs at least {MIN_TRIALS} trials with a score, has {len(study.trials)}")
    elif len(group) < MIN_TRIALS:
        return Importance(method, {}, len(group), objective, f"needs at least {MIN_TRIALS} trials with a score, has {len(group)}")
    else:
        study = study_from_trials(group, objective)
    if not study.trials[0].distributions:
        return Importance(method, {}, len(group), objective, "no parameter varied across its trials")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PED-ANOVA is marked experimental
        values = optuna.importance.get_param_importances(study, evaluator=optuna.importance.PedAnovaImportanceEvaluator())
    return Importance(method, dict(values), len(study.trials), objective)
