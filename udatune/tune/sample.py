"""Turn a `SearchSpace` into trials: an Optuna define-by-run function and the searcher that runs it.

`SpaceSampler(space)(trial)` asks an `optuna.Trial` for every value the space leaves open and
returns ``{"overrides": {...}}``: dotted `TrialConfig` overrides such as
``{"uda.policy": "autoaugment:[...]", "uda.lambda_u": 0.7}``. The policy is built as a policy
object and written in its compact string form, so a sampled policy is always one that
`parse_policy` accepts.

Both searcher kinds run the same function: ``optuna`` drives it with TPE, ``random`` with
Optuna's `RandomSampler` — random search over exactly the same space, seeded, without a
second sampling code path to keep in step.

Every method's first trial is the sweep's default recipe expressed in the method's own
parameters (`default_point`, handed to Tune as ``points_to_evaluate``): a search then starts
where the default stands, and its best on val is never below the default's within its family.
TPE's random start-up is sized to the method's share of the budget (`startup_trials`).
A method whose first trial would train exactly what the default-UDA baseline trains
(`shared_methods`: RandAugment's, as shipped) does not run it again: the baseline's result is
told to the method's study as its first trial (`tell_shared`).
"""

from __future__ import annotations

import math
from typing import Any

from udatune.config import TrialConfig
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


def startup_trials(trials: int) -> int:
    """TPE's random start-up for a method given ``trials`` (the default-recipe trial counted):
    a third of them, at least 2 — TPE models good and bad regions from what it has seen, and
    with fewer than two points it has nothing to split — and at most Optuna's usual 10."""
    return max(2, min(10, math.ceil(trials / 3)))


def sampling_note(space: SearchSpace, trials: int, shared: bool = False) -> str:
    """How the method's trials are drawn, in words for the sweep's summary: a TPE budget that
    never leaves its random start-up is random search, and the summary says so."""
    count = f"{trials} trial{'s' if trials != 1 else ''}"
    first = "the default recipe (the uda-default baseline's run, not trained again)" if shared else "the default recipe"
    if space.searcher != "optuna":
        return f"{count}: {first}, then random search"
    startup = startup_trials(trials)
    if trials <= startup:
        return f"{count}: {first}, then random (TPE would start after {startup}; this budget never leaves random sampling)"
    return f"{count}: {first}, random up to {startup}, then TPE"


def default_point(space: SearchSpace, recipe: TrialConfig) -> dict[str, Any]:
    """The values of the space's open parameters that make its trial the sweep's default
    recipe (``recipe``: the base config, whose UDA section the default-UDA baseline runs), as
    far as the family can express it: RandAugment takes the default's N and M; AutoAugment
    gets sub-policies of distinct ops at probability 1 and the default's magnitude (a fixed
    AutoAugment cannot draw from every op the way RandAugment does); a value outside the
    space's range is moved to its nearest allowed value."""
    from udatune.augment.policy import AutoAugment

    values: dict[str, Any] = {}
    for name, param in space.params.items():
        section = recipe.train if param_key(name).startswith("train.") else recipe.uda
        values[name] = getattr(section, name)
    default = recipe.uda.parsed_policy
    magnitude = getattr(default, "m", 4)
    policy = space.policy
    if policy.family == "randaugment":
        values.update(ra_n=getattr(default, "n", 2), ra_m=magnitude)
    elif policy.family == "autoaugment":
        given = default.subpolicies if isinstance(default, AutoAugment) else ()
        shape_fits = len(given) == policy.subpolicies and all(len(sp) == policy.ops_per_subpolicy for sp in given)
        slots = policy.subpolicies * policy.ops_per_subpolicy
        for k in range(policy.subpolicies):
            for j in range(policy.ops_per_subpolicy):
                if shape_fits:
                    op, probability, m = given[k][j]
                else:  # ops spread evenly over the space's list, each applied at the default magnitude
                    op, probability, m = policy.ops[(k * policy.ops_per_subpolicy + j) * len(policy.ops) // slots], 1.0, magnitude
                values.update({f"sp{k}_op{j}": op, f"sp{k}_p{j}": probability, f"sp{k}_m{j}": m})
    params = {**space.params, **_policy_params(policy)}
    return {name: _nearest(params[name], value) for name, value in values.items() if name in params and _is_open(params[name])}


def first_overrides(space: SearchSpace, recipe: TrialConfig) -> dict[str, Any]:
    """The config overrides of the method's first trial: `default_point` run through the same
    define-by-run function as every other trial."""
    import optuna

    return SpaceSampler(space)(optuna.trial.FixedTrial(default_point(space, recipe)))["overrides"]


def shared_methods(spaces: tuple[SearchSpace, ...], recipe: TrialConfig, shares: dict[str, int]) -> tuple[str, ...]:
    """The methods whose first trial trains exactly the default-UDA baseline's config (the base
    config with ``uda.mode`` = uda, the same seed): running it would train the baseline's run
    again, so the sweep counts that run for the method instead. ``shares``: the
    methods' searched trials (a method with none has no first trial to share)."""
    baseline = recipe.override({"uda.mode": "uda"}).to_dict()
    return tuple(s.method for s in spaces
                 if shares.get(s.method, 0) > 0 and recipe.override(first_overrides(s, recipe)).to_dict() == baseline)


def tell_shared(storage: Any, space: SearchSpace, define: "SpaceSampler", point: dict[str, Any], tune_trial_id: str, value: float) -> bool:
    """Record the default-UDA baseline's run (Tune trial ``tune_trial_id``, val mIoU ``value``)
    as a completed trial of the method's study, with the first trial's parameters: the study
    then holds what the method's own first trial would have given. Public Optuna API only
    (enqueue, ask, tell), on the study's storage; told once (False when already told — a
    resumed sweep's searcher may be older than its study)."""
    import optuna

    study = optuna.load_study(study_name=space.method, storage=storage)
    if any(t.user_attrs.get(TUNE_TRIAL_ID) == tune_trial_id for t in study.get_trials(deepcopy=False)):
        return False
    study.enqueue_trial(point)
    trial = study.ask()
    define.tune_trial_id = tune_trial_id
    define(trial)
    study.tell(trial, value)
    return True


def _policy_params(policy: PolicySpace) -> dict[str, Param]:
    """The policy's Optuna parameters by name, as `sample_policy` asks for them."""
    if policy.family == "randaugment":
        return {"ra_n": policy.n, "ra_m": policy.m}
    if policy.family != "autoaugment":
        return {}
    params: dict[str, Param] = {}
    for k in range(policy.subpolicies):
        for j in range(policy.ops_per_subpolicy):
            params.update({f"sp{k}_op{j}": Param("choice", choices=policy.ops), f"sp{k}_p{j}": policy.probability,
                           f"sp{k}_m{j}": policy.magnitude})
    return params


def _is_open(param: Param) -> bool:
    """Whether `suggest` asks Optuna for this parameter (a fixed value or a single choice is not asked)."""
    if param.kind == "fixed":
        return False
    if param.kind == "choice":
        return len(param.choices) > 1
    return param.low != param.high


def _nearest(param: Param, value: Any) -> Any:
    if param.kind == "choice":
        if value in param.choices:
            return value
        numeric = [c for c in param.choices if isinstance(c, (int, float)) and not isinstance(c, bool)]
        if numeric and isinstance(value, (int, float)) and not isinstance(value, bool):
            return min(numeric, key=lambda c: abs(c - value))
        return param.choices[0]
    clipped = min(max(value, param.low), param.high)
    return int(round(clipped)) if param.kind == "int" else float(clipped)


def make_searcher(space: SearchSpace, seed: int = 0, storage=None, define: SpaceSampler | None = None,
                  trials: int = 0, first: dict[str, Any] | None = None):
    """Ray Tune's `OptunaSearch` over the space: TPE for ``optuna``, uniform for ``random``.

    ``storage``: an Optuna storage where the study (named after the space's method) is kept —
    the sweep folder's journal (store.optuna_storage), which `optuna-dashboard` opens; None
    keeps it in memory. ``define``: the define-by-run function to use (default: a new
    `SpaceSampler`). ``trials``: the method's share of the sweep (sizes TPE's start-up);
    ``first``: the values of its first trial (`default_point`)."""
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    sampler_seed = space.seed + seed
    if space.searcher == "optuna":
        sampler = optuna.samplers.TPESampler(seed=sampler_seed, n_startup_trials=startup_trials(trials))
    else:
        sampler = optuna.samplers.RandomSampler(seed=sampler_seed)
    return OptunaSearch(space=define or SpaceSampler(space), metric=METRIC, mode=MODE, sampler=sampler,
                        study_name=space.method, storage=storage, points_to_evaluate=[first] if first else None)
