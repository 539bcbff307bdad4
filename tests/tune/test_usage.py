"""Where a sweep's reserved time went: the accounting of bench/sweep on hand-made trials."""

import math

import pandas as pd
import pytest

from udatune.tune.timing import process_start_time
from udatune.tune.worker import TrainReporter
from udatune.tune.usage import sweep_usage


def trial(started, process, worker, reported, ended, setup, train, evaluation, checkpoint=0.0):
    return {"started_at": started, "process_started_at": process, "worker_started_at": worker, "reported_at": reported,
            "ended_at": ended, "setup_seconds": setup, "train_seconds": train, "eval_seconds": evaluation,
            "checkpoint_seconds": checkpoint}


def test_usage_splits_the_reserved_time_into_phases_and_idle_slots():
    # Two slots for 100 s. Trial a holds slot 1 from 10 to 60 s, trial b slot 2 from 12 to 92 s;
    # slot 1 then idles to the end: 100 + 100 - 50 - 80 = 70 idle slot-seconds.
    frame = pd.DataFrame([
        trial(started=5, process=10, worker=14, reported=58, ended=60, setup=1, train=40, evaluation=3, checkpoint=1),
        trial(started=6, process=12, worker=15, reported=90, ended=92, setup=2, train=70, evaluation=4),
    ])
    usage = sweep_usage(frame, wall_seconds=100, slots=2)
    assert usage.reserved_seconds == 200
    assert usage.train_seconds == 110 and usage.training_share == pytest.approx(0.55)
    assert usage.held_seconds == 130 and usage.idle_seconds == 70
    assert usage.held_training_share == pytest.approx(110 / 130)
    assert usage.worker_start_seconds == 4 + 3
    assert usage.setup_seconds == 3 and usage.eval_seconds == 7 and usage.checkpoint_seconds == 1
    # what is held but in no measured phase: 130 - (7 + 3 + 110 + 7 + 1)
    assert usage.other_held_seconds == pytest.approx(2)
    phases = [usage.train_seconds, usage.eval_seconds, usage.checkpoint_seconds, usage.setup_seconds,
              usage.worker_start_seconds, usage.other_held_seconds, usage.idle_seconds]
    assert sum(phases) == pytest.approx(usage.reserved_seconds)  # the table's rows add up to 100%
    assert usage.trial_startup_seconds == pytest.approx((9 + 9) / 2)
    assert usage.trial_teardown_seconds == pytest.approx(2)


def test_data_parallel_trials_hold_one_slot_per_worker():
    frame = pd.DataFrame([trial(started=0, process=1, worker=2, reported=20, ended=21, setup=1, train=15, evaluation=1, checkpoint=1)])
    usage = sweep_usage(frame, wall_seconds=25, slots=2, workers_per_trial=2)
    assert usage.held_seconds == 40 and usage.train_seconds == 30 and usage.idle_seconds == 10
    assert usage.checkpoint_seconds == 1  # rank 0 alone writes checkpoints


def test_the_reporter_times_set_up_apart_from_training():
    now = [100.0]
    reporter = TrainReporter(rank=0, clock=lambda: now[0])
    now[0] += 4.0  # data and model
    reporter({"kind": "start", "step": 0}, save=None)
    now[0] += 10.0  # ten steps
    reporter({"kind": "train", "step": 10, "loss": 1.0, "lr": 0.1}, save=None)
    now[0] += 5.0
    reporter({"kind": "train", "step": 20, "loss": 0.9, "lr": 0.1}, save=None)
    assert reporter.times.setup_seconds == 4.0 and reporter.times.train_seconds == 15.0 and reporter.times.eval_seconds == 0.0
    assert reporter.last_train["step"] == 20


def test_a_process_knows_when_it_started():
    import time

    age = time.time() - process_start_time()
    assert 0 <= age < 3600 and not math.isnan(age)
