"""The sweep's Tune searcher: baselines first, then the methods, each through its own OptunaSearch.

Its state is its attributes, pickled with the experiment, so `Tuner.restore` brings back where
the sweep stood (which trials were handed out, each method's Optuna study).
"""

from __future__ import annotations

import pickle

from ray.tune.search import Searcher

from udatune.tune.results import DEFAULT_UDA, FAILURE
from udatune.config import TrialConfig
from udatune.tune.sample import METRIC, MODE, SpaceSampler, default_point, make_searcher, tell_shared
from udatune.tune.settings import SweepSettings, baseline_configs, method_shares, searched_configs


class PickledSearcher(Searcher):
    """A searcher whose whole state is its attributes: Tune saves it with the experiment (and
    `Tuner.restore` brings it back) by pickling them."""

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as file:
            pickle.dump(self.__dict__, file)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            self.__dict__.update(pickle.load(file))


class SweepSearcher(PickledSearcher):
    """Dispatches trials to per-method searchers; baselines are fixed configs handed out first.

    With ``slots`` (how many trials the cluster fits at once), a trial beyond the slots — the
    one queued to start the moment a slot frees — is handed out only once every live trial has
    reported: the first trials then start without a third one's start-up competing for the
    CPUs, and the baselines, first in the queue, are the trials that get the first slots.
    """

    def __init__(self, settings: SweepSettings, slots: int = 0, studies=None, recipe: TrialConfig | None = None) -> None:
        super().__init__(metric=METRIC, mode=MODE)
        if settings.plan:
            self.queue: list[dict] = [dict(config) for config in settings.plan]
        else:
            self.queue = baseline_configs(settings) + searched_configs(settings)
        # ``studies``: the Optuna storage that keeps each method's study (the sweep folder's
        # journal, store.optuna_storage); None keeps them in memory.
        # ``recipe``: the sweep's base config, whose UDA settings the default-UDA baseline runs;
        # each method's first trial is that recipe in the method's own terms (sample.default_point),
        # or, for a shared method, the baseline's run, told to its study when it completes.
        import optuna

        self.storage = studies or optuna.storages.InMemoryStorage()
        recipe = recipe or TrialConfig()
        shares = method_shares(settings)
        self.defines = {space.method: SpaceSampler(space) for space in settings.spaces}
        firsts = {space.method: default_point(space, recipe) for space in settings.spaces}
        self.searchers = {
            space.method: make_searcher(space, settings.seed, self.storage, self.defines[space.method], trials=shares[space.method],
                                        first=None if space.method in settings.shared else firsts[space.method])
            for space in settings.spaces
        }
        # Shared methods: their space and first point, and the default-UDA baseline trial
        # (first seed) whose result they take.
        self.shared = {space.method: (space, firsts[space.method]) for space in settings.spaces if space.method in settings.shared}
        self.shared_seed = settings.seeds[0]
        self.shared_trial = ""
        self.owner: dict[str, str] = {}  # trial id -> method (searched trials only)
        self.handed_out = 0
        self.slots = slots
        self.live: dict[str, bool] = {}  # trial id -> has it reported yet (trials not yet complete)

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # metric and mode are fixed: val mIoU, maximised

    def restore(self, checkpoint_path: str) -> None:
        super().restore(checkpoint_path)
        # Which trials were live is the old driver's view; Tune restarts them without asking,
        # and a stale entry must never hold new trials back. A searcher saved by an udatune
        # without pacing has no ``slots``, one from before the studies were kept no
        # ``defines``: it goes on without.
        self.live = {}
        self.slots = getattr(self, "slots", 0)
        self.defines = getattr(self, "defines", {})  # saved before the studies were kept: none
        self.shared = getattr(self, "shared", {})  # saved before shared first trials: none
        self.shared_seed = getattr(self, "shared_seed", None)
        self.shared_trial = getattr(self, "shared_trial", "")

    def ready_for_another(self) -> bool:
        """Whether a new trial may be handed out now (see the class docstring)."""
        return not self.slots or len(self.live) < self.slots or all(self.live.values())

    def suggest(self, trial_id: str) -> dict | None:
        if self.handed_out >= len(self.queue):
            return self.FINISHED
        if not self.ready_for_another():
            return None  # Tune asks again shortly
        slot = dict(self.queue[self.handed_out])
        if slot["method"] in self.searchers:
            if slot["method"] in self.defines:
                self.defines[slot["method"]].tune_trial_id = trial_id
            suggestion = self.searchers[slot["method"]].suggest(trial_id)
            if suggestion is None:
                return None
            slot["overrides"] = suggestion["overrides"]
            self.owner[trial_id] = slot["method"]
        elif slot["method"] == DEFAULT_UDA and slot["seed"] == self.shared_seed:
            self.shared_trial = trial_id
        slot["index"] = self.handed_out
        self.handed_out += 1
        self.live[trial_id] = False
        return slot

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self.live:
            self.live[trial_id] = True
        if trial_id in self.owner and METRIC in result and not result.get(FAILURE):
            # Optuna keys intermediate values by Tune's training_iteration, which starts again
            # at 1 when a trial is resumed; the trial's step goes on where it was.
            result = {**result, "training_iteration": int(result.get("step", result.get("training_iteration", 0)))}
            self.searchers[self.owner[trial_id]].on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.live.pop(trial_id, None)
        if trial_id == self.shared_trial and result is not None and METRIC in result and not (error or result.get(FAILURE)):
            # The baseline a shared method's first trial stands on; a failed one is told to no
            # study (the method then simply has one trial fewer).
            for method, (space, point) in self.shared.items():
                tell_shared(self.storage, space, self.defines[method], point, trial_id, float(result[METRIC]))
        if trial_id in self.owner:
            if result is not None and (METRIC not in result or result.get(FAILURE)):
                result, error = None, True  # failed (diverged), or ended before its first evaluation
            self.searchers[self.owner[trial_id]].on_trial_complete(trial_id, result=result, error=error)
