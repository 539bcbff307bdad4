"""A sweep: baselines plus one or more search methods, as ONE Ray Tune experiment.

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
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import pickle
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from ray.tune import Callback
from ray.tune.search import Searcher

from udatune.config import TrialConfig
from udatune.errors import ConfigError
from udatune.tune import ray_compat, store
from udatune.tune.driver_state import HEARTBEAT_S
from udatune.tune.results import DEFAULT_UDA, FAILURE, SUPERVISED, SweepResults
from udatune.tune.sample import METRIC, MODE, SpaceSampler, make_searcher
from udatune.tune.space import SearchSpace
from udatune.tune.trainable import DRIVER_RESOURCES, TrialResources, start_stop_board, stop_board, sweep_trial

SCHEDULERS = ("asha", "fifo")


@dataclass(frozen=True)
class SweepSettings:
    spaces: tuple[SearchSpace, ...]
    name: str
    storage: str  # a local folder or a URI pyarrow understands (s3://, gs://)
    trials: int = 4  # searched trials in total, shared by the methods (baselines come on top)
    seeds: tuple[int, ...] = (0,)
    max_steps: int = field(default_factory=lambda: TrialConfig().train.steps)  # the config's budget (one default)
    max_concurrent: int = 0  # 0: as many trials as the cluster's CPUs/GPUs fit
    scheduler: str = "asha"
    grace_period: int = 0  # ASHA's first rung, in steps; 0: half of max_steps
    reduction_factor: float = 3.0
    resources: TrialResources = field(default_factory=TrialResources)
    baselines: bool = True
    seed: int = 0  # searcher seed
    max_failures: int = 2  # restarts of a trial (and of its Train run) after a lost worker or node
    # A fixed list of trial configs (``udatune confirm``'s re-runs), run instead of baselines
    # and searched trials; ``evaluate_test``: each trial also scores the test split at its end.
    plan: tuple[dict, ...] = ()
    evaluate_test: bool = False

    def check(self) -> None:
        problems = [
            (self.trials < 0, f"--trials must be ≥ 0, got {self.trials}"),
            (not self.seeds, "--seeds needs at least one seed"),
            (self.max_steps <= 0, f"--max-steps must be > 0, got {self.max_steps}"),
            (self.max_concurrent < 0, f"--max-concurrent must be ≥ 0, got {self.max_concurrent}"),
            (self.scheduler not in SCHEDULERS, f"--scheduler must be one of {', '.join(SCHEDULERS)}, got {self.scheduler!r}"),
            (self.grace_period < 0 or self.grace_period > self.max_steps, f"--grace-period must be in [0, max steps = {self.max_steps}], got {self.grace_period}"),
            (self.reduction_factor <= 1, f"--reduction-factor must be > 1, got {self.reduction_factor}"),
            (self.resources.workers < 1, f"--workers-per-trial must be ≥ 1, got {self.resources.workers}"),
            (self.resources.cpus <= 0, f"--cpus-per-trial must be > 0, got {self.resources.cpus}"),
            (self.resources.gpus < 0, f"--gpus-per-trial must be ≥ 0, got {self.resources.gpus}"),
            # DDP ranks sharing one GPU: NCCL aborts ("Duplicate GPU detected") at the first collective.
            (self.resources.workers > 1 and not float(self.resources.gpus).is_integer(),
             f"--workers-per-trial {self.resources.workers} with --gpus-per-trial {self.resources.gpus:g}: "
             "data-parallel workers need whole GPUs each (NCCL cannot run two ranks on one GPU); "
             "use --gpus-per-trial 1 (or more), or --workers-per-trial 1 to pack several trials per GPU"),
            (self.max_failures < 0, f"--max-failures must be ≥ 0, got {self.max_failures}"),
            (self.trials > 0 and not self.spaces, "searched trials need at least one --space"),
            (self.trials == 0 and not self.baselines and not self.plan, "nothing to run: no searched trials and no baselines"),
            (bool(self.plan) and (self.trials > 0 or self.baselines), "a fixed plan runs alone: no searched trials, no baselines"),
        ]
        for bad, message in problems:
            if bad:
                raise ConfigError(f"Invalid sweep setting: {message}.")
        methods = [s.method for s in self.spaces]
        clash = sorted({m for m in methods if methods.count(m) > 1 or m in (SUPERVISED, DEFAULT_UDA)})
        if clash:
            raise ConfigError(f"Two spaces (or a space and a baseline) share the method name {clash[0]!r}; give each space file its own `method:`.")

    @property
    def path(self) -> str:
        return f"{self.storage.rstrip('/')}/{self.name}"

    @property
    def total_trials(self) -> int:
        if self.plan:
            return len(self.plan)
        return self.trials + (2 * len(self.seeds) if self.baselines else 0)


def baseline_configs(settings: SweepSettings) -> list[dict]:
    if not settings.baselines:
        return []
    configs = []
    for seed in settings.seeds:
        configs.append({"method": SUPERVISED, "seed": seed, "overrides": {"uda.mode": "supervised"}})
        configs.append({"method": DEFAULT_UDA, "seed": seed, "overrides": {"uda.mode": "uda"}})
    return configs


def method_order(settings: SweepSettings) -> list[tuple[str, int]]:
    """(method, seed) for each searched trial: methods round-robin, each cycling the seeds."""
    order, used = [], {s.method: 0 for s in settings.spaces}
    for i in range(settings.trials):
        method = settings.spaces[i % len(settings.spaces)].method
        order.append((method, settings.seeds[used[method] % len(settings.seeds)]))
        used[method] += 1
    return order


# --- the searcher: baselines first, then the methods, each through its own OptunaSearch -----------


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

    def __init__(self, settings: SweepSettings, slots: int = 0, studies=None) -> None:
        super().__init__(metric=METRIC, mode=MODE)
        if settings.plan:
            self.queue: list[dict] = [dict(config) for config in settings.plan]
        else:
            self.queue = baseline_configs(settings) + [{"method": m, "seed": s} for m, s in method_order(settings)]
        # ``studies``: the Optuna storage that keeps each method's study (the sweep folder's
        # journal, store.optuna_storage); None keeps them in memory.
        storage = studies
        self.defines = {space.method: SpaceSampler(space) for space in settings.spaces}
        self.searchers = {
            space.method: make_searcher(space, settings.seed, storage, self.defines[space.method]) for space in settings.spaces
        }
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
        if trial_id in self.owner:
            if result is not None and (METRIC not in result or result.get(FAILURE)):
                result, error = None, True  # failed (diverged), or ended before its first evaluation
            self.searchers[self.owner[trial_id]].on_trial_complete(trial_id, result=result, error=error)



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


# --- what the driver sees: a Tune callback that fills SweepResults ----------------------------------


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


def sweep_callbacks(path: str, results: SweepResults, listener: Callable[[SweepResults], None] | None) -> list:
    """The driver's callbacks, the same for a new sweep and a resumed one (`ResultsCallback`
    first: `fit_and_record` is handed it). Tune's TensorBoard logger is asked for by name, so
    ``tensorboard --logdir <sweep>`` shows every trial's curves whatever Tune adds by itself
    (it comes after `KeepTrialLogs`, which must run before any logger)."""
    from ray.tune.logger import TBXLoggerCallback

    return [ResultsCallback(results, listener, path), DriverHeartbeat(path), KeepTrialLogs(), TBXLoggerCallback()]


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
            search_alg=SweepSearcher(settings, slots=0 if settings.max_concurrent else fits, studies=store.optuna_storage(settings.path)),
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


def trials_that_fit(resources: TrialResources, cpus: float, gpus: float) -> int:
    """How many trials' Train workers fit on the cluster at once."""
    fits = math.floor(cpus / (resources.workers * resources.cpus) + 1e-9)
    if resources.gpus:
        fits = min(fits, math.floor(gpus / (resources.workers * resources.gpus) + 1e-9))
    return fits


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


def default_name() -> str:
    return "sweep-" + dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def summary_line(settings: SweepSettings) -> str:
    if settings.plan:
        return f"{settings.total_trials} trials (a fixed plan), {settings.max_steps} steps each, {settings.scheduler.upper()}"
    methods = ", ".join(s.method for s in settings.spaces) or "none"
    return (
        f"{settings.total_trials} trials ({settings.trials} searched over {methods}"
        f"{'' if not settings.baselines else f' + {2 * len(settings.seeds)} baselines'}), "
        f"{settings.max_steps} steps each, seeds {','.join(map(str, settings.seeds))}, {settings.scheduler.upper()}"
    )

