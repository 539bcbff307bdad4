"""The sweep driver: baselines plus one or more search methods, as ONE Ray Tune experiment.

The experiment's trials come from `SweepSearcher`, which hands out, in order:

1. the baselines — per seed, a supervised-only trial and a default-UDA trial — so that every
   searched trial has a partner on the same labeled subset, seed and step budget;
2. the searched trials, round-robin over the methods (one per space file), each method
   sampled by its own `OptunaSearch` (TPE or random), seeds cycling.

One experiment keeps everything in one results table and one folder that Tune can resume; the
methods share the budget (``--trials``) and the scheduler. ASHA prunes searched trials only —
a baseline always runs its full budget, since the gains are measured against it.

Folder layout (``<storage>/<name>/``): udatune's own files, written and read only through the
sweep store (store.py: manifest, driver state, trial rows rewritten at each event, so a killed
driver loses nothing and a resumed one continues it), Tune's experiment state and one folder per
trial (which only Tune reads back), and ``train/<trial id>/`` for each trial's Ray Train run and
checkpoints.

A sweep survives its driver: Ctrl-C and SIGTERM stop it the same way (Tune saves the experiment;
each trial's Train run keeps its last checkpoint), and after a SIGKILL the files are at most a
few seconds behind. `udatune resume` (restore.py) carries on from them.

The pieces, one module each: settings.py (what the sweep asks for, the order of its trials),
searcher.py, scheduler.py, callbacks.py (rows, heartbeat, trial logs), store.py (the folder).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from udatune.config import TrialConfig
from udatune.errors import ConfigError
from udatune.tune import store
from udatune.tune.callbacks import DriverHeartbeat, KeepTrialLogs, ResultsCallback, sweep_callbacks  # noqa: F401  (old sweeps' pickles name them here)
from udatune.tune.results import SweepResults
from udatune.tune.scheduler import make_scheduler
from udatune.tune.searcher import PickledSearcher, SweepSearcher  # noqa: F401  (old sweeps' pickles name them here)
from udatune.tune.settings import SweepSettings, trials_that_fit
from udatune.tune.stopping import start_stop_board
from udatune.tune.trainable import DRIVER_RESOURCES, sweep_trial


@dataclass
class SweepOutcome:
    path: str
    results: SweepResults
    interrupted: bool
    seconds: float


def run_sweep(
    settings: SweepSettings,
    base: TrialConfig,
    data_fingerprint: str,
    cluster,
    listener: Callable[[SweepResults], None] | None = None,
) -> SweepOutcome:
    """Run the sweep on a connected cluster (see `cluster.ray_cluster`) and write its files."""
    from ray import tune

    settings.check()
    quiet_optuna()
    started = time.time()
    fits = trials_that_fit(settings.resources, cluster.cpus, cluster.gpus)
    # One trial more than fits runs "queued": its trial actor and Train controller start while
    # the others train, and its workers start the moment a trial frees its resources. That hides
    # about half of Ray's per-trial start-up (see docs: udatune/tune/trainable.py).
    max_concurrent = settings.max_concurrent or (fits + 1)
    if fits < 1 and not settings.max_concurrent:
        need = f"{settings.resources.workers} × ({settings.resources.cpus:g} CPU, {settings.resources.gpus:g} GPU)"
        raise ConfigError(
            f"One trial needs {need} but the cluster has {cluster.cpus:g} CPUs and {cluster.gpus:g} GPUs; "
            "lower --workers-per-trial / --cpus-per-trial / --gpus-per-trial."
        )
    write_manifest(settings, base, data_fingerprint, cluster, max_concurrent)
    base_config = base.override({"train.steps": settings.max_steps}).to_dict()
    results = SweepResults(base.to_dict(), settings.max_steps)
    callbacks = sweep_callbacks(settings.path, results, listener)
    board = start_stop_board(board_name(settings))  # noqa: F841  (kept alive while the sweep runs)
    tuner = tune.Tuner(
        make_trainable(settings, base_config),
        tune_config=tune.TuneConfig(
            search_alg=SweepSearcher(settings, slots=0 if settings.max_concurrent else fits, studies=store.optuna_storage(settings.path),
                                     recipe=base),
            scheduler=make_scheduler(settings, board_name(settings)),
            num_samples=settings.total_trials,
            max_concurrent_trials=max_concurrent,
            reuse_actors=False,  # function trainables cannot be reset in Ray 2.60
            trial_name_creator=trial_name,
            trial_dirname_creator=trial_name,
        ),
        run_config=tune.RunConfig(
            name=settings.name,
            storage_path=settings.storage,
            callbacks=callbacks,
            verbose=0,
            # A trial whose actor or Train controller is lost starts again; its Train run
            # resumes from its last checkpoint (see trainable.py).
            failure_config=tune.FailureConfig(max_failures=settings.max_failures),
        ),
    )
    return fit_and_record(tuner, settings, results, callbacks[0], started)


def make_trainable(settings: SweepSettings, base_config: dict):
    """The Tune trainable of every trial: the same for a new sweep and a resumed one (Tune
    restores an experiment only with the trainable it was started with)."""
    from ray import tune

    return tune.with_resources(
        tune.with_parameters(
            sweep_trial,
            base=base_config,
            resources=settings.resources,
            train_storage=f"{settings.path}/train",
            stop_board=board_name(settings),
            max_failures=settings.max_failures,
            evaluate_test=settings.evaluate_test,
        ),
        DRIVER_RESOURCES,
    )


def board_name(settings: SweepSettings) -> str:
    return f"stop-board-{settings.name}"


def fit_and_record(tuner, settings: SweepSettings, results: SweepResults, callback: ResultsCallback, started: float) -> SweepOutcome:
    """Run the (new or restored) experiment; mark the driver running, then finished or
    interrupted; write the results."""
    state = "interrupted"
    store.write_state(settings.path, "running")
    try:
        with sigterm_stops_tune():
            grid = tuner.fit()
        if callback.final_statuses:
            # Interrupted (Ctrl-C, SIGTERM): trials were left running or never created.
            interrupted = len(results.rows) < settings.total_trials or any(
                row.status in ("running", "pending") for row in results.rows.values()
            )
        else:
            # Ray Client (ray://): Tune ran remotely, with a copy of the callback; rebuild the
            # rows from the result grid instead.
            results = results_from_grid(grid, results.base, settings.max_steps)
            interrupted = len(grid) < settings.total_trials
        store.write_rows(settings.path, results)
        state = "interrupted" if interrupted else "finished"
    finally:
        store.write_state(settings.path, state)
    return SweepOutcome(settings.path, results, interrupted, time.time() - started)


@contextlib.contextmanager
def sigterm_stops_tune():
    """SIGTERM (`kill`, a batch scheduler's polite stop) ends the sweep the way Ctrl-C does:
    Tune saves the experiment one last time and returns. Tune itself listens to SIGINT and
    SIGUSR1 only, so SIGTERM is passed on as SIGUSR1 while the experiment runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: signal.raise_signal(signal.SIGUSR1))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def results_from_grid(grid, base: dict, max_steps: int) -> SweepResults:
    results = SweepResults(base, max_steps)
    for result in grid:
        trial_id = result.metrics.get("trial_id", str(len(results.rows)))
        history = result.metrics_dataframe
        if history is not None and "val_miou" in history:
            for record in history.to_dict("records"):
                results.result(trial_id, result.config, record)
        results.add(trial_id, result.config)
        results.finished(trial_id, result.config, error=result.error is not None)
    return results


def trial_name(trial) -> str:
    """``003-autoaugment-s0-1a0f6d82``: order, method, seed, Tune's id."""
    config = trial.config
    return f"{int(config.get('index', 0)):03d}-{config.get('method', 'trial')}-s{config.get('seed', 0)}-{trial.trial_id}"


# --- files ------------------------------------------------------------------------------------------


def write_manifest(settings: SweepSettings, base: TrialConfig, fingerprint: str, cluster, max_concurrent: int) -> None:
    import ray

    import udatune

    manifest = store.Manifest(
        format=store.FORMAT,
        udatune_version=udatune.__version__,
        git_revision=git_revision(),
        ray_version=ray.__version__,
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        name=settings.name,
        path=settings.path,
        cluster={"address": cluster.address, "cpus": cluster.cpus, "gpus": cluster.gpus},
        settings={
            **{k: v for k, v in asdict(settings).items() if k != "spaces"},
            "max_concurrent_resolved": max_concurrent,
            "spaces": [{"method": s.method, "searcher": s.searcher, "file": s.source, "space": asdict(s)} for s in settings.spaces],
        },
        base_config=base.override({"train.steps": settings.max_steps}).to_dict(),
        data_fingerprint=fingerprint,
    )
    store.write_manifest(settings.path, manifest)


def git_revision() -> str | None:
    """The revision of the udatune checkout, if it is one (None for an installed package)."""
    import udatune

    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(udatune.__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=Path(udatune.__file__).parent, capture_output=True, text=True, timeout=5
    )
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
