"""Where a sweep's reserved CPU/GPU time went: training steps versus overhead.

The resources a sweep holds are ``cluster slots × wall time`` (for a local Ray started for the
sweep, all of it). Only time inside training steps (batches included) counts as useful; Ray's
start-up, each trial's start-up (trial actor, Train controller, worker group, data and model)
and tear-down, evaluation and checkpoints are overhead. Inputs are the sweep's ``results.csv``
(per-trial ``train_seconds`` etc. measured inside the Train worker, wall-clock stamps from the
driver) and the wall time of the whole command.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class SweepUsage:
    wall_seconds: float
    reserved_seconds: float  # slots × wall
    train_seconds: float  # Σ over trials (× workers per trial)
    eval_seconds: float
    checkpoint_seconds: float
    trial_startup_seconds: float  # mean: Tune starts the trial -> the Train worker starts training
    trial_teardown_seconds: float  # mean: last report -> Tune sees the trial end
    trials: int

    @property
    def training_share(self) -> float:
        return self.train_seconds / self.reserved_seconds if self.reserved_seconds else math.nan

    def lines(self) -> list[str]:
        return [
            f"trials: {self.trials}, wall {self.wall_seconds:.0f} s, reserved {self.reserved_seconds:.0f} slot-s",
            f"inside training steps: {self.train_seconds:.0f} slot-s = {self.training_share:.1%} of reserved",
            f"evaluation {self.eval_seconds:.0f} s, checkpoints {self.checkpoint_seconds:.0f} s",
            f"per-trial start-up {self.trial_startup_seconds:.1f} s, tear-down {self.trial_teardown_seconds:.1f} s (means)",
        ]


def sweep_usage(frame, wall_seconds: float, slots: float, workers_per_trial: int = 1) -> SweepUsage:
    """``slots``: how many trial workers the reserved resources hold at once (e.g. 2 CPUs at
    1 CPU per worker = 2)."""
    startup = (frame["worker_started_at"] - frame["started_at"]).dropna()
    teardown = (frame["ended_at"] - frame["reported_at"]).dropna()
    return SweepUsage(
        wall_seconds=wall_seconds,
        reserved_seconds=slots * wall_seconds,
        train_seconds=float(frame["train_seconds"].sum()) * workers_per_trial,
        eval_seconds=float(frame["eval_seconds"].sum()) * workers_per_trial,
        checkpoint_seconds=float(frame["checkpoint_seconds"].sum()),
        trial_startup_seconds=float(startup.mean()) if len(startup) else math.nan,
        trial_teardown_seconds=float(teardown.mean()) if len(teardown) else math.nan,
        trials=len(frame),
    )
