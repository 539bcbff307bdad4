"""`udatune confirm`: re-run the search's winners with fresh seeds and score them on test.

A search picks its best trials on the validation split, from many noisy runs, so its best gain
is an optimistic estimate. Confirmation re-trains the top-K distinct configurations and the
supervised baseline with seeds the search never used, each paired on the same seed, and scores
every run on the test split once, at the end (``sweep_trial(..., evaluate_test=True)``).

The runs form one more Ray Tune experiment, FIFO (nothing is pruned), stored inside the sweep at
``<sweep>/confirm/`` — ``confirm.json`` (what was re-run and why), the rows as a sweep keeps
them, ``train/<trial id>/`` checkpoints. The report reads it through the sweep store
(`store.read_confirmation`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from dataclasses import asdict, dataclass
from typing import Callable

from udatune.errors import ConfigError
from udatune.reports.load import Sweep
from udatune.reports.stats import rank_trials, score_column
from udatune.tune import store
from udatune.tune.results import ENDED, SUPERVISED, SweepResults
from udatune.tune.sample import METRIC, MODE
from udatune.tune.sweep import PickledSearcher
from udatune.tune.trainable import TrialResources

DEFAULT_SEEDS = (100, 101, 102)


@dataclass(frozen=True)
class Candidate:
    """A configuration of the search, to be re-run."""

    name: str  # "c1", "c2", ... in rank order
    method: str
    source_trial: str
    overrides: dict  # the dotted TrialConfig overrides it ran with
    score: float  # what ranked it: paired val gain (or val mIoU without baselines)
    seed: int  # the seed it had in the search


@dataclass(frozen=True)
class ConfirmSettings:
    top: int = 3
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    resources: TrialResources = TrialResources()
    max_concurrent: int = 0  # 0: as many as fit, plus one queued (as in `run_sweep`)

    def check(self, sweep: Sweep) -> None:
        used = sorted(set(int(s) for s in sweep.trials["seed"]) & set(self.seeds))
        problems = [
            (self.top < 1, f"--top must be ≥ 1, got {self.top}"),
            (not self.seeds, "--seeds needs at least one seed"),
            (len(set(self.seeds)) != len(self.seeds), f"--seeds repeats a seed: {','.join(map(str, self.seeds))}"),
            (bool(used), f"seed {','.join(map(str, used))} was used by the search; confirmation needs fresh seeds"),
            (self.max_concurrent < 0, f"--max-concurrent must be ≥ 0, got {self.max_concurrent}"),
        ]
        for bad, message in problems:
            if bad:
                raise ConfigError(f"Invalid confirm setting: {message}.")


def row_overrides(row: dict) -> dict:
    """A trial's overrides rebuilt from its table row (when only a table of the rows was readable)."""
    overrides = {"uda.mode": "uda", "uda.policy": row["policy"], "uda.tsa": row["tsa"]}
    overrides.update({f"uda.{k}": float(row[k]) for k in ("lambda_u", "tau", "temperature") if math.isfinite(float(row[k]))})
    if "encoder_lr_mult" in row and math.isfinite(float(row["encoder_lr_mult"])) and float(row["encoder_lr_mult"]) != 1.0:
        overrides["train.encoder_lr_mult"] = float(row["encoder_lr_mult"])
    return overrides


def rank_candidates(sweep: Sweep, top: int) -> list[Candidate]:
    """The ``top`` best distinct non-supervised configurations: trials that ran their full
    budget first (an early-stopped trial's score is from fewer steps), then by score."""
    trials = sweep.trials
    column = score_column(trials)
    chosen, seen = [], set()
    for row in rank_trials(trials[trials["method"] != SUPERVISED], column, full_budget_first=True).to_dict("records"):
        overrides = sweep.config(row["trial_id"]).get("overrides") or row_overrides(row)
        key = json.dumps(overrides, sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        chosen.append(Candidate(f"c{len(chosen) + 1}", row["method"], row["trial_id"], overrides, float(row[column]), int(row["seed"])))
        if len(chosen) == top:
            break
    return chosen


def confirm_plan(candidates: list[Candidate], seeds: tuple[int, ...]) -> list[dict]:
    """Trial configs: per seed, the supervised baseline first, then each candidate."""
    plan = []
    for seed in seeds:
        plan.append({"method": SUPERVISED, "seed": seed, "overrides": {"uda.mode": "supervised"}, "candidate": "baseline", "source_trial": ""})
        for c in candidates:
            plan.append({"method": c.method, "seed": seed, "overrides": dict(c.overrides), "candidate": c.name, "source_trial": c.source_trial})
    return [{**config, "index": i} for i, config in enumerate(plan)]


class ConfigQueue(PickledSearcher):
    """Hands out a fixed list of trial configs, in order (Tune's search algorithm interface)."""

    def __init__(self, configs: list[dict]) -> None:
        super().__init__(metric=METRIC, mode=MODE)
        self.configs = list(configs)
        self.handed_out = 0

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True

    def suggest(self, trial_id: str) -> dict | None:
        if self.handed_out >= len(self.configs):
            return self.FINISHED
        self.handed_out += 1
        return dict(self.configs[self.handed_out - 1])

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        pass


@dataclass
class ConfirmOutcome:
    path: str
    results: SweepResults  # live rows (val metrics), as in a sweep
    frame: object  # pandas DataFrame from `store.read_confirmation`, with test scores; None if nothing ran
    interrupted: bool
    seconds: float


def confirm_path(sweep: Sweep) -> str:
    return store.confirm_path(sweep.path)


def exists(sweep: Sweep) -> bool:
    return store.is_confirmed(sweep.path)


def remove(sweep: Sweep) -> None:
    """Delete an earlier confirmation (``--force``)."""
    store.remove_confirmation(sweep.path)


def run_confirm(
    sweep: Sweep,
    candidates: list[Candidate],
    settings: ConfirmSettings,
    cluster,
    listener: Callable[[SweepResults], None] | None = None,
) -> ConfirmOutcome:
    """Run the re-runs on a connected cluster (see `cluster.ray_cluster`) and write their files."""
    from ray import tune
    from ray.tune.schedulers import FIFOScheduler

    from udatune.tune.sweep import ResultsCallback, results_from_grid, trial_name, trials_that_fit
    from udatune.tune.trainable import DRIVER_RESOURCES, sweep_trial

    started = time.time()
    plan = confirm_plan(candidates, settings.seeds)
    fits = trials_that_fit(settings.resources, cluster.cpus, cluster.gpus)
    if fits < 1 and not settings.max_concurrent:
        raise ConfigError(
            f"One trial needs {settings.resources.workers} × ({settings.resources.cpus:g} CPU, {settings.resources.gpus:g} GPU) "
            f"but the cluster has {cluster.cpus:g} CPUs and {cluster.gpus:g} GPUs; lower --workers-per-trial / --cpus-per-trial / --gpus-per-trial."
        )
    path = confirm_path(sweep)
    manifest = {
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "sweep": sweep.name,
        "settings": {**asdict(settings), "seeds": list(settings.seeds)},
        "candidates": [asdict(c) for c in candidates],
        "trials": len(plan),
    }
    store.write_confirm_manifest(sweep.path, manifest)
    results = SweepResults(sweep.base_config, sweep.max_steps)
    callback = ResultsCallback(results, listener, path)
    trainable = tune.with_resources(
        tune.with_parameters(
            sweep_trial,
            base=sweep.base_config,
            resources=settings.resources,
            train_storage=f"{path}/train",
            evaluate_test=True,
        ),
        DRIVER_RESOURCES,
    )
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=ConfigQueue(plan),
            scheduler=FIFOScheduler(),
            num_samples=len(plan),
            max_concurrent_trials=settings.max_concurrent or (fits + 1),
            reuse_actors=False,
            trial_name_creator=trial_name,
            trial_dirname_creator=trial_name,
        ),
        run_config=tune.RunConfig(
            name=store.CONFIRM,
            storage_path=sweep.path,
            callbacks=[callback],
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=0),
        ),
    )
    grid = tuner.fit()
    if not callback.final_statuses:  # Ray Client (ray://): Tune ran remotely, with a copy of the callback
        results = results_from_grid(grid, sweep.base_config, sweep.max_steps)
    store.write_rows(path, results)
    frame = store.read_confirmation(sweep.path)
    interrupted = len(grid) < len(plan) or (frame is not None and not frame["status"].isin(ENDED).all())
    return ConfirmOutcome(path, results, frame, interrupted, time.time() - started)
