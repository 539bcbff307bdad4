"""Where a sweep's reserved CPU/GPU time went: training steps versus overhead.

The resources a sweep holds are ``cluster slots × wall time`` (for a local Ray started for the
sweep, all of it). Only time inside training steps (batches included) counts as useful; Ray's
start-up, each trial's start-up (trial actor, Train controller, worker group, data and model)
and tear-down, evaluation, checkpoints and slots that no trial holds are overhead. Inputs are
the sweep's ``results.csv`` (per-trial ``train_seconds`` etc. measured inside the Train worker,
wall-clock stamps from the worker and the driver) and the wall time of the whole command.

A slot counts as held by a trial from the moment its Train worker process started (Ray starts
it once the trial's placement group is granted) until Tune saw the trial end; whatever is left
of ``slots × wall`` is idle: Ray starting, a slot waiting for the next trial's workers, and the
end of a sweep when fewer trials than slots are left.
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
    setup_seconds: float  # in the worker, before the first step: data, model, loaders
    worker_start_seconds: float  # worker process started -> the train function runs (Ray Train, imports)
    held_seconds: float  # Σ over trials: worker process started -> Tune saw the trial end
    trial_startup_seconds: float  # mean: Tune starts the trial -> the Train worker starts training
    trial_teardown_seconds: float  # mean: last report -> Tune sees the trial end
    trials: int

    @property
    def training_share(self) -> float:
        return self.train_seconds / self.reserved_seconds if self.reserved_seconds else math.nan

    @property
    def held_training_share(self) -> float:
        """Training's share of the time trials held their slots (idle slots left out)."""
        return self.train_seconds / self.held_seconds if self.held_seconds else math.nan

    @property
    def idle_seconds(self) -> float:
        return self.reserved_seconds - self.held_seconds

    @property
    def other_held_seconds(self) -> float:
        """Held by a trial but in none of the measured phases: reports, tear-down, steps after
        the last evaluation of a trial that the scheduler stopped."""
        measured = self.worker_start_seconds + self.setup_seconds + self.train_seconds + self.eval_seconds + self.checkpoint_seconds
        return self.held_seconds - measured

    def share(self, seconds: float) -> float:
        return seconds / self.reserved_seconds if self.reserved_seconds else math.nan

    def lines(self) -> list[str]:
        return [
            f"trials: {self.trials}, wall {self.wall_seconds:.0f} s, reserved {self.reserved_seconds:.0f} slot-s",
            f"inside training steps: {self.train_seconds:.0f} slot-s = {self.training_share:.1%} of reserved, "
            f"{self.held_training_share:.1%} of the time trials held their slots",
            f"evaluation {self.eval_seconds:.0f} s, checkpoints {self.checkpoint_seconds:.0f} s, set-up {self.setup_seconds:.0f} s, "
            f"worker start {self.worker_start_seconds:.0f} s, idle {self.idle_seconds:.0f} slot-s",
            f"per-trial start-up {self.trial_startup_seconds:.1f} s, tear-down {self.trial_teardown_seconds:.1f} s (means)",
        ]


def sweep_usage(frame, wall_seconds: float, slots: float, workers_per_trial: int = 1) -> SweepUsage:
    """``slots``: how many trial workers the reserved resources hold at once (e.g. 2 CPUs at
    1 CPU per worker = 2)."""

    def total(column: str) -> float:
        return float(frame[column].fillna(0.0).sum()) * workers_per_trial if column in frame else 0.0

    startup = (frame["worker_started_at"] - frame["started_at"]).dropna()
    teardown = (frame["ended_at"] - frame["reported_at"]).dropna()
    process = frame["process_started_at"] if "process_started_at" in frame else frame["worker_started_at"]
    held = (frame["ended_at"] - process).dropna().clip(lower=0.0)
    worker_start = (frame["worker_started_at"] - process).dropna().clip(lower=0.0)
    return SweepUsage(
        wall_seconds=wall_seconds,
        reserved_seconds=slots * wall_seconds,
        train_seconds=total("train_seconds"),
        eval_seconds=total("eval_seconds"),
        checkpoint_seconds=total("checkpoint_seconds") / workers_per_trial,  # rank 0 writes it
        setup_seconds=total("setup_seconds"),
        worker_start_seconds=float(worker_start.sum()) * workers_per_trial,
        held_seconds=float(held.sum()) * workers_per_trial,
        trial_startup_seconds=float(startup.mean()) if len(startup) else math.nan,
        trial_teardown_seconds=float(teardown.mean()) if len(teardown) else math.nan,
        trials=len(frame),
    )
