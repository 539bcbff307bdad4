"""What the driver sees: Tune callbacks that keep the sweep's rows, heartbeat and trial logs."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Callable

from ray.tune import Callback

from udatune.tune import ray_compat, store
from udatune.tune.driver_state import HEARTBEAT_S
from udatune.tune.results import SweepResults


class ResultsCallback(Callback):
    """Feeds Tune's trial events into `SweepResults` and tells a listener after each change.

    With a sweep ``path`` it also keeps the sweep's files current: ``trials.json`` after every
    event, ``results.csv`` / ``results.parquet`` whenever a trial ends. A resumed sweep hands it
    the rows saved before; on its first step it forgets the rows of trials the restored
    experiment does not know (created in the last seconds before a SIGKILL, after Tune last
    saved its state: Tune creates their slot again).
    """

    def __init__(self, results: SweepResults, listener: Callable[[SweepResults], None] | None = None, path: str | None = None) -> None:
        self.results = results
        self.listener = listener or (lambda results: None)
        self.path = path
        self.final_statuses: dict[str, str] = {}
        self.checked_known = False

    def __getstate__(self) -> dict:
        # Tune pickles its callbacks with the experiment; a listener (a live display holding
        # the terminal) stays behind.
        return {**self.__dict__, "listener": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.listener = self.listener or (lambda results: None)

    def on_step_begin(self, iteration, trials, **info):
        if not self.checked_known:
            self.checked_known = True
            known = {trial.trial_id for trial in trials}
            if set(self.results.rows) - known:
                self.results.keep_only(known)
                self.changed(tables=True)
        # Trials Tune created but has not started yet: rows too (pending), so that a report
        # of a running sweep shows what is queued.
        new = [trial for trial in trials if trial.trial_id not in self.results.rows]
        for trial in new:
            self.results.add(trial.trial_id, trial.config)
        if new:
            self.changed()

    def on_trial_start(self, iteration, trials, trial, **info):
        self.results.started(trial.trial_id, trial.config)
        self.changed()

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.results.result(trial.trial_id, trial.config, result)
        self.changed()

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.results.finished(trial.trial_id, trial.config)
        self.changed(tables=True)

    def on_trial_error(self, iteration, trials, trial, **info):
        self.results.finished(trial.trial_id, trial.config, error=True, error_file=trial.error_file, reason=error_reason(trial))
        self.changed(tables=True)

    def on_experiment_end(self, trials, **info):
        self.final_statuses = {t.trial_id: t.status for t in trials}
        for trial in trials:  # trials that failed before they started, or never ran
            if trial.trial_id not in self.results.rows or trial.status == "ERROR":
                row = self.results.add(trial.trial_id, trial.config)
                if trial.status == "ERROR" and row.status != "error" and not row.final:
                    self.results.finished(trial.trial_id, trial.config, error=True, error_file=trial.error_file, reason=error_reason(trial))
        self.changed(tables=True)

    def changed(self, tables: bool = False) -> None:
        self.listener(self.results)
        if self.path:
            store.write_rows(self.path, self.results, tables=tables)


def error_reason(trial) -> str:
    """The last line of a trial's error (the exception), for the ``reason`` column."""
    try:
        lines = [line.strip() for line in Path(trial.error_file).read_text().splitlines() if line.strip()]
    except (OSError, TypeError):
        return ""
    return lines[-1][:300] if lines else ""


class DriverHeartbeat(Callback):
    """Refreshes ``state.json`` while the driver runs, so a reader on another host can tell a
    running sweep from one whose driver was killed (see driver_state.py)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.last = time.time()

    def on_step_end(self, iteration, trials, **info):
        if time.time() - self.last >= HEARTBEAT_S:
            self.last = time.time()
            store.write_state(self.path, "running")


class KeepTrialLogs(Callback):
    """A resumed trial appends to its ``result.json`` / ``progress.csv`` instead of starting
    them afresh.

    Tune's loggers copy a restarted trial's logs back from storage only when the trial has a
    Tune checkpoint; ours have none (their checkpoints are Ray Train's), so Tune would open new,
    empty files in this driver's staging folder and sync them over the old ones. Runs before
    Tune's loggers (user callbacks come first) and copies the files back itself.
    """

    FILES = ("result.json", "progress.csv")

    def on_trial_start(self, iteration, trials, trial, **info):
        import pyarrow.fs

        where = ray_compat.trial_storage(trial)
        if where is None:
            return
        filesystem, folder = where
        for name in self.FILES:
            local = Path(trial.local_path, name)
            if local.exists():
                continue
            local.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                pyarrow.fs.copy_files(f"{folder}/{name}", str(local), source_filesystem=filesystem)


class KeepOwnFiles(Callback):
    """Tune uploads its staging copy of a restored experiment's files back over the sweep
    folder at every experiment checkpoint; udatune's own files must not be among them (they
    would go back to what they held at the restore). See ray_compat.drop_staged_copies."""

    NAMES = (store.TRIALS, store.STATE, store.MANIFEST, store.CONFIRM)

    def __init__(self) -> None:
        self.done = False

    def on_step_begin(self, iteration, trials, **info):
        if not self.done:
            self.done = True
            ray_compat.drop_staged_copies(trials, self.NAMES)


def sweep_callbacks(path: str, results: SweepResults, listener: Callable[[SweepResults], None] | None) -> list:
    """The driver's callbacks, the same for a new sweep and a resumed one (`ResultsCallback`
    first: `fit_and_record` is handed it). Tune's TensorBoard logger is asked for by name, so
    ``tensorboard --logdir <sweep>`` shows every trial's curves whatever Tune adds by itself
    (it comes after `KeepTrialLogs`, which must run before any logger)."""
    from ray.tune.logger import TBXLoggerCallback

    return [ResultsCallback(results, listener, path), DriverHeartbeat(path), KeepTrialLogs(), KeepOwnFiles(), TBXLoggerCallback()]
