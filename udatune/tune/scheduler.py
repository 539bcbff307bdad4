"""The sweep's scheduler: FIFO, or ASHA over the searched trials (baselines always finish)."""

from __future__ import annotations

from udatune.tune import ray_compat
from udatune.tune.results import DEFAULT_UDA, FAILURE, SUPERVISED
from udatune.tune.sample import METRIC, MODE
from udatune.tune.settings import SweepSettings
from udatune.tune.trainable import stop_board


def make_scheduler(settings: SweepSettings, board_name: str | None = None):
    from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler, TrialScheduler

    if settings.scheduler == "fifo":
        return FIFOScheduler()

    class PairedASHA(AsyncHyperBandScheduler):
        """ASHA over the searched trials; baselines always run their full budget.

        A stop decision is passed to the trial through the `StopBoard` (the trial ends itself,
        see trainable.py) instead of Tune killing the trial's actor.
        """

        def on_trial_result(self, tune_controller, trial, result):
            if trial.config.get("method") in (SUPERVISED, DEFAULT_UDA) or result.get(FAILURE):
                return TrialScheduler.CONTINUE  # a failed trial is ending by itself
            decision = super().on_trial_result(tune_controller, trial, result)
            if decision != TrialScheduler.STOP:
                return decision
            if result.get("step", 0) >= settings.max_steps:
                return TrialScheduler.CONTINUE  # its last evaluation: the trial is ending by itself
            board = stop_board(board_name)
            if board is None:
                return decision
            board.stop.remote(trial.trial_id)
            return TrialScheduler.CONTINUE

        def on_trial_complete(self, tune_controller, trial, result):
            if trial.config.get("method") in (SUPERVISED, DEFAULT_UDA) or (result or {}).get(FAILURE):
                ray_compat.forget_asha_trial(self, trial.trial_id)
                return
            super().on_trial_complete(tune_controller, trial, result)

    grace = settings.grace_period or max(1, settings.max_steps // 2)
    return PairedASHA(
        time_attr="step",
        metric=METRIC,
        mode=MODE,
        max_t=settings.max_steps,
        grace_period=grace,
        reduction_factor=settings.reduction_factor,
    )
