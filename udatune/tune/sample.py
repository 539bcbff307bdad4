"""Turn a `SearchSpace` into trials: an Optuna define-by-run function and the searcher that runs it.

`SpaceSampler(space)(trial)` asks an `optuna.Trial` for every value the space leaves open and
returns ``{"overrides": {...}}``: dotted `TrialConfig` overrides such as
``{"uda.policy": "autoaugment:[...]", "uda.lambda_u": 0.7}``. The policy is built as a policy
object and written in its compact string form, so a sampled policy is always one that
`parse_policy` accepts.

Both searcher kinds run the same function: ``optuna`` drives it with TPE, ``random`` with
Optuna's `RandomSampler` — random search over exactly the same space, seeded, without a
second sampling code path to keep in step.
"""

from __future__ import annotations

from typing import Any

from udatune.tune.space import Param, PolicySpace, SearchSpace, param_key

METRIC = "val_miou"
MODE = "max"
TUNE_TRIAL_ID = "tune_trial_id"  # user attribute of each trial in a sweep's Optuna study


class SpaceSampler:
    """The define-by-run space for Ray Tune's `OptunaSearch` (a class, so it pickles with the
    searcher's state when a sweep is saved for resuming).

    ``tune_trial_id``, when the sweep's searcher sets it before asking, is kept on the Optuna
    trial as a user attribute: the study in the sweep folder then says which Tune trial each of
    its trials was, and the report pairs them with their gains (reports/importance.py).
    """

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.tune_trial_id = ""

    def __call__(self, trial: Any) -> dict[str, dict[str, Any]]:
        if self.tune_trial_id:
            trial.set_user_attr(TUNE_TRIAL_ID, self.tune_trial_id)
        overrides: dict[str, Any] = {"uda.mode": "uda", "uda.policy": sample_policy(trial, self.space.policy)}
        for name, param in self.space.params.items():
            overrides[param_key(name)] = suggest(trial, name, param)
        overrides.update(self.space.trial)
        return {"overrides": overrides}


def suggest(trial: Any, name: str, param: Param) -> Any:
    if param.kind == "fixed":
        return param.value
    if param.kind == "choice":
        return trial.suggest_categorical(name, list(param.choices)) if len(param.choices) > 1 else param.choices[0]
    if param.low == param.high:
        return int(param.low) if param.kind == "int" else param.low
    if param.kind == "int":
        return trial.suggest_int(name, int(param.low), int(param.high), log=param.log)
    return trial.suggest_float(name, param.low, param.high, log=param.log)


def sample_policy(trial: Any, space: PolicySpace) -> str:
    """Sample one policy and return its compact string (always `parse_policy`-able)."""
    from udatune.augment.policy import AutoAugment, RandAugment, TrivialAugment, parse_policy

    if space.family == "autoaugment":
        subpolicies = []
        for k in range(space.subpolicies):
            steps = []
            for j in range(space.ops_per_subpolicy):
                op = trial.suggest_categorical(f"sp{k}_op{j}", list(space.ops)) if len(space.ops) > 1 else space.ops[0]
                probability = round(float(suggest(trial, f"sp{k}_p{j}", space.probability)), 2)
                magnitude = int(suggest(trial, f"sp{k}_m{j}", space.magnitude))
                steps.append((op, probability, magnitude))
            subpolicies.append(tuple(steps))
        policy = AutoAugment(tuple(subpolicies))
    elif space.family == "randaugment":
        policy = RandAugment(int(suggest(trial, "ra_n", space.n)), int(suggest(trial, "ra_m", space.m)), space.op_set)
    elif space.family == "trivialaugment":
        policy = TrivialAugment(space.op_set)
    else:
        policy = parse_policy(space.policy)
    return policy.to_string()


def make_searcher(space: SearchSpace, seed: int = 0, storage=None, define: SpaceSampler | None = None):
    """Ray Tune's `OptunaSearch` over the space: TPE for ``optuna``, uniform for ``random``.

    ``storage``: an Optuna storage where the study (named after the space's method) is kept —
    the sweep folder's journal (store.optuna_storage), which `optuna-dashboard` opens; None
    keeps it in memory. ``define``: the define-by-run function to use (default: a new
    `SpaceSampler`)."""
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    sampler_seed = space.seed + seed
    if space.searcher == "optuna":
        # A few random trials first, then TPE (Optuna's default start-up of 10 is longer than
        # a small sweep).
        sampler = optuna.samplers.TPESampler(seed=sampler_seed, n_startup_trials=4)
    else:
        sampler = optuna.samplers.RandomSampler(seed=sampler_seed)
    return OptunaSearch(space=define or SpaceSampler(space), metric=METRIC, mode=MODE, sampler=sampler,
                        study_name=space.method, storage=storage)
