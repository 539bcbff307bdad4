"""Where a Train worker's time goes: set-up, training, evaluation, checkpoints.

`LoopTimes` splits the worker's wall time by the training loop's records; usage.py sums the
phases over a sweep's trials (the overhead benchmark, bench/sweep).
"""

from __future__ import annotations

import contextlib
import time


class LoopTimes:
    """Seconds per phase of one Train worker's loop.

    From the worker's start to the loop's start record is set-up (data, model, loaders); the
    time between records is training (steps and batch loading) when a train record ends it,
    and evaluation when an eval record does. Checkpoint writing is timed on its own.
    """

    def __init__(self, clock=time.perf_counter) -> None:
        self.clock = clock  # a monotonic clock in seconds (a test passes its own)
        self.setup_seconds = 0.0
        self.train_seconds = 0.0
        self.eval_seconds = 0.0
        self.checkpoint_seconds = 0.0
        self.started = time.time()  # wall clock: when the worker's loop function began
        self.process_started = process_start_time()
        self.mark = self.clock()

    def end(self, phase: str) -> None:
        """Count the time since the last mark as ``phase`` (setup, train or eval); mark now."""
        now = self.clock()
        name = f"{phase}_seconds"
        setattr(self, name, getattr(self, name) + now - self.mark)
        self.mark = now

    def skip(self) -> None:
        """Mark now, counting the time since the last mark as no phase."""
        self.mark = self.clock()

    @contextlib.contextmanager
    def checkpointing(self):
        """Time the block as checkpoint writing."""
        tick = self.clock()
        yield
        self.checkpoint_seconds += self.clock() - tick

    def metrics(self) -> dict:
        """The phases and wall-clock stamps as reported to Tune (results.csv's timing columns)."""
        return {
            "setup_seconds": self.setup_seconds,
            "train_seconds": self.train_seconds,
            "eval_seconds": self.eval_seconds,
            "checkpoint_seconds": self.checkpoint_seconds,
            "worker_started": self.started,
            "process_started": self.process_started,
        }


def process_start_time() -> float:
    """When this process started (Unix time): for a Train worker, about when Ray granted its
    trial's resources. Linux reads it from /proc; elsewhere it is now."""
    import os

    try:
        with open("/proc/self/stat") as file:
            ticks = int(file.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as file:
            boot = next(int(line.split()[1]) for line in file if line.startswith("btime"))
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time()
    return boot + ticks / os.sysconf("SC_CLK_TCK")
