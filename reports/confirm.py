"""`udatune confirm`: re-run the search's winners with fresh seeds and score them on test.

A search picks its best trials on the validation split, from many noisy runs, so its best gain
is an optimistic estimate. Confirmation re-trains the top-K distinct configurations and the
supervised baseline with seeds the search never used, each paired on the same seed, and scores
every run on the test split once, at the end (``sweep_trial(..., evaluate_test=True)``).

The runs form a sweep of their own with a fixed plan, FIFO (nothing is pruned), stored inside
the sweep at ``<sweep>/confirm/`` and run by the same driver as a search (`confirmation_sweep`),
so it has the live table, heartbeat, Ctrl-C and `udatune resume` of any sweep; ``confirm.json``
says what is re-run and why. This module only ranks, plans and reads: the report reads the
re-runs through the sweep store (`store.read_confirmation`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import asdict, dataclass

from udatune.errors import ConfigError
from udatune.reports.load import Sweep
from udatune.reports.stats import rank_trials, score_column
from udatune.tune import store
from udatune.config import TrialConfig
from udatune.tune.results import DEFAULT_UDA, SUPERVISED
from udatune.tune.settings import check_confirm_seeds
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
    default_recipe: bool = False  # the sweep's default UDA recipe (whichever trial ran it)


@dataclass(frozen=True)
class ConfirmSettings:
    top: int = 3
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    resources: TrialResources = TrialResources()
    max_concurrent: int = 0  # 0: as many as fit, plus one queued (as in `run_sweep`)

    def check(self, sweep: Sweep) -> None:
        self.check_seeds(set(int(s) for s in sweep.trials["seed"]))

    def check_seeds(self, searched: set[int], top: str = "--top", seeds: str = "--seeds") -> None:
        """``searched``: the seeds the search used (`udatune search --confirm` checks before it
        starts, naming its own options ``top`` and ``seeds``)."""
        check_confirm_seeds(self.top, self.seeds, searched, top, seeds)
        if self.max_concurrent < 0:
            raise ConfigError(f"Invalid confirm setting: --max-concurrent must be ≥ 0, got {self.max_concurrent}.")


def row_overrides(row: dict) -> dict:
    """A trial's overrides rebuilt from its table row (when only a table of the rows was readable)."""
    overrides = {"uda.mode": "uda", "uda.policy": row["policy"], "uda.tsa": row["tsa"]}
    overrides.update({f"uda.{k}": float(row[k]) for k in ("lambda_u", "tau", "temperature") if math.isfinite(float(row[k]))})
    if "encoder_lr_mult" in row and math.isfinite(float(row["encoder_lr_mult"])) and float(row["encoder_lr_mult"]) != 1.0:
        overrides["train.encoder_lr_mult"] = float(row["encoder_lr_mult"])
    return overrides


def recipe_key(sweep: Sweep, overrides: dict) -> str:
    """What a configuration trains, whatever the trial: the sweep's base config with the
    overrides applied, seed left out. Two trials with the same key are one recipe (the default
    recipe run as the uda-default baseline and as a method's first trial, say)."""
    config = TrialConfig.from_dict(sweep.base_config, source=f"{sweep.path}/sweep.json").override(overrides).to_dict()
    config.get("train", {}).pop("seed", None)
    return json.dumps(config, sort_keys=True, default=str)


def rank_candidates(sweep: Sweep, top: int, with_default: bool = False) -> list[Candidate]:
    """The ``top`` best distinct non-supervised configurations: trials that ran their full
    budget first (an early-stopped trial's score is from fewer steps), then by score.
    ``with_default``: the default UDA recipe is re-run too — the yardstick a searched recipe
    must beat — added after the ``top`` when it is not among them."""
    trials = sweep.trials
    column = score_column(trials)
    default_key = recipe_key(sweep, {"uda.mode": "uda"})
    chosen, seen = [], set()
    ranked = rank_trials(trials[trials["method"] != SUPERVISED], column, full_budget_first=True).to_dict("records")
    for row in ranked:
        overrides = sweep.config(row["trial_id"]).get("overrides") or row_overrides(row)
        key = recipe_key(sweep, overrides)
        if key in seen:
            continue
        seen.add(key)
        chosen.append(Candidate(f"c{len(chosen) + 1}", row["method"], row["trial_id"], overrides, float(row[column]),
                                int(row["seed"]), default_recipe=key == default_key))
        if len(chosen) == top:
            break
    if with_default and not any(c.default_recipe for c in chosen):
        # The yardstick is re-run even when it scored badly in the search (its consistency
        # never switched on, say): which of its baseline trials is named is only a label.
        defaults = trials[trials["method"] == DEFAULT_UDA].dropna(subset=[column]).sort_values(column, ascending=False)
        row = defaults.iloc[0].to_dict() if len(defaults) else None
        chosen.append(Candidate(f"c{len(chosen) + 1}", DEFAULT_UDA, row["trial_id"] if row else "", {"uda.mode": "uda"},
                                float(row[column]) if row else math.nan, int(row["seed"]) if row else 0, default_recipe=True))
    return chosen


def confirm_plan(candidates: list[Candidate], seeds: tuple[int, ...]) -> list[dict]:
    """Trial configs: per seed, the supervised baseline first, then each candidate."""
    plan = []
    for seed in seeds:
        plan.append({"method": SUPERVISED, "seed": seed, "overrides": {"uda.mode": "supervised"}, "candidate": "baseline", "source_trial": ""})
        for c in candidates:
            plan.append({"method": c.method, "seed": seed, "overrides": dict(c.overrides), "candidate": c.name,
                         "source_trial": c.source_trial, "default_recipe": c.default_recipe})
    return [{**config, "index": i} for i, config in enumerate(plan)]


def confirmation_sweep(sweep: Sweep, candidates: list[Candidate], settings: ConfirmSettings):
    """The re-runs as a sweep of their own, ``<sweep>/confirm``, run by the same driver as a
    search (udatune.tune.sweep.run_sweep: live table, heartbeat, Ctrl-C, `udatune resume`):
    a fixed plan, FIFO (nothing pruned), every trial scored on the test split at its end."""
    from udatune.tune.settings import SweepSettings

    return SweepSettings(
        spaces=(), name=store.CONFIRM, storage=sweep.path, trials=0, seeds=tuple(settings.seeds), max_steps=sweep.max_steps,
        max_concurrent=settings.max_concurrent, scheduler="fifo", resources=settings.resources, baselines=False,
        max_failures=int(sweep.settings.get("max_failures", 2)), plan=tuple(confirm_plan(candidates, settings.seeds)),
        evaluate_test=True,
    )


def confirm_manifest(sweep: Sweep, candidates: list[Candidate], settings: ConfirmSettings) -> store.Confirmation:
    """``confirm.json``: what is re-run, and why."""
    return store.Confirmation(
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        sweep=sweep.name,
        settings={**asdict(settings), "seeds": list(settings.seeds)},
        candidates=tuple(asdict(c) for c in candidates),
        trials=(len(candidates) + 1) * len(settings.seeds),
    )


def progress(path: str) -> str:
    """Where the confirmation of the sweep at ``path`` stands: "none" (never started, or stopped
    before its first trial: nothing to carry on), "interrupted" or "finished". A damaged or
    still running confirmation is a `ConfigError` naming it (the checks of `udatune resume`)."""
    from udatune.tune import restore

    folder = store.confirm_path(path)
    if not store.is_sweep(folder):
        return "none"
    if not restore.has_experiment(folder):
        restore.check_not_running(folder, store.read_state(folder))  # still starting, in another process
        return "none"
    return "finished" if restore.prepare_resume(folder, path).nothing_to_do else "interrupted"


def requested(settings) -> ConfirmSettings | None:
    """The confirmation `udatune search --confirm K` asked for (``settings``: the sweep's
    `SweepSettings`), on the search's own resources; None when it asked for none."""
    if not settings.confirm:
        return None
    return ConfirmSettings(settings.confirm, tuple(settings.confirm_seeds), settings.resources, settings.max_concurrent)


def confirm_path(sweep: Sweep) -> str:
    return store.confirm_path(sweep.path)


def exists(sweep: Sweep) -> bool:
    return store.is_confirmed(sweep.path)


def remove(sweep: Sweep) -> None:
    """Delete an earlier confirmation (``--force``)."""
    store.remove_confirmation(sweep.path)
