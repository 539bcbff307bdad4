"""A sweep: baselines plus one or more search methods, as ONE Ray Tune experiment.

The experiment's trials come from `SweepSearcher`, which hands out, in order:

1. the baselines — per seed, a supervised-only trial and a default-UDA trial — so that every
   searched trial has a partner on the same labeled subset, seed and step budget;
2. the searched trials, round-robin over the methods (one per space file), each method
   sampled by its own `OptunaSearch` (TPE or random), seeds cycling.

One experiment keeps everything in one results table and one folder that Tune can resume; the
methods share the budget (``--trials``) and the scheduler. ASHA prunes searched trials only —
a baseline always runs its full budget, since the gains are measured against it.

Folder layout (``<storage>/<name>/``): Tune's experiment state and one folder per trial,
``train/<trial id>/`` for each trial's Ray Train run and checkpoints, ``sweep.json`` (version,
git revision, resolved settings and config, data fingerprint) and ``results.csv`` /
``results.parquet`` (one row per trial).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import pickle
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from ray.tune import Callback
from ray.tune.search import Searcher

from udatune.config import TrialConfig
from udatune.errors import ConfigError
from udatune.tune.results import DEFAULT_UDA, SUPERVISED, SweepResults
from udatune.tune.sample import METRIC, MODE, make_searcher
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
    max_steps: int = 600
    max_concurrent: int = 0  # 0: as many trials as the cluster's CPUs/GPUs fit
    scheduler: str = "asha"
    grace_period: int = 0  # ASHA's first rung, in steps; 0: half of max_steps
    reduction_factor: float = 3.0
    resources: TrialResources = field(default_factory=TrialResources)
    baselines: bool = True
    seed: int = 0  # searcher seed

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
            (self.trials > 0 and not self.spaces, "searched trials need at least one --space"),
            (self.trials == 0 and not self.baselines, "nothing to run: no searched trials and no baselines"),
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


class SweepSearcher(Searcher):
    """Dispatches trials to per-method searchers; baselines are fixed configs handed out first."""

    def __init__(self, settings: SweepSettings) -> None:
        super().__init__(metric=METRIC, mode=MODE)
        self.queue: list[dict] = baseline_configs(settings)
        self.queue += [{"method": m, "seed": s} for m, s in method_order(settings)]
        self.searchers = {space.method: make_searcher(space, settings.seed) for space in settings.spaces}
        self.owner: dict[str, str] = {}  # trial id -> method (searched trials only)
        self.handed_out = 0

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # metric and mode are fixed: val mIoU, maximised

    def suggest(self, trial_id: str) -> dict | None:
        if self.handed_out >= len(self.queue):
            return self.FINISHED
        slot = dict(self.queue[self.handed_out])
        if slot["method"] in self.searchers:
            suggestion = self.searchers[slot["method"]].suggest(trial_id)
            if suggestion is None:
                return None
            slot["overrides"] = suggestion["overrides"]
            self.owner[trial_id] = slot["method"]
        slot["index"] = self.handed_out
        self.handed_out += 1
        return slot

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self.owner and METRIC in result:
            self.searchers[self.owner[trial_id]].on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self.owner:
            if result is not None and METRIC not in result:
                result, error = None, True  # failed before its first evaluation
            self.searchers[self.owner[trial_id]].on_trial_complete(trial_id, result=result, error=error)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as file:
            pickle.dump(self.__dict__, file)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            self.__dict__.update(pickle.load(file))


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
            if trial.config.get("method") in (SUPERVISED, DEFAULT_UDA):
                return TrialScheduler.CONTINUE
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
            if trial.config.get("method") in (SUPERVISED, DEFAULT_UDA):
                self._trial_info.pop(trial.trial_id, None)
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
    """Feeds Tune's trial events into `SweepResults` and tells a listener after each change."""

    def __init__(self, results: SweepResults, listener: Callable[[SweepResults], None] | None = None) -> None:
        self.results = results
        self.listener = listener or (lambda results: None)
        self.final_statuses: dict[str, str] = {}

    def __getstate__(self) -> dict:
        # Tune pickles its callbacks with the experiment; a listener (a live display holding
        # the terminal) stays behind.
        return {**self.__dict__, "listener": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.listener = self.listener or (lambda results: None)

    def on_trial_start(self, iteration, trials, trial, **info):
        self.results.started(trial.trial_id, trial.config)
        self.listener(self.results)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.results.result(trial.trial_id, trial.config, result)
        self.listener(self.results)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.results.finished(trial.trial_id, trial.config)
        self.listener(self.results)

    def on_trial_error(self, iteration, trials, trial, **info):
        self.results.finished(trial.trial_id, trial.config, error=True, error_file=trial.error_file)
        self.listener(self.results)

    def on_experiment_end(self, trials, **info):
        self.final_statuses = {t.trial_id: t.status for t in trials}
        for trial in trials:  # trials that failed before they started, or never ran
            if trial.trial_id not in self.results.rows or trial.status == "ERROR":
                row = self.results.add(trial.trial_id, trial.config)
                if trial.status == "ERROR" and row.status != "error":
                    self.results.finished(trial.trial_id, trial.config, error=True, error_file=trial.error_file)
        self.listener(self.results)


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
    import time

    from ray import tune

    import optuna

    settings.check()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
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
    results = SweepResults(base.to_dict(), settings.max_steps)
    callback = ResultsCallback(results, listener)

    board_name = f"stop-board-{settings.name}"
    board = start_stop_board(board_name)  # noqa: F841  (kept alive while the sweep runs)
    trainable = tune.with_resources(
        tune.with_parameters(
            sweep_trial,
            base=base.override({"train.steps": settings.max_steps}).to_dict(),
            resources=settings.resources,
            train_storage=f"{settings.path}/train",
            stop_board=board_name,
        ),
        DRIVER_RESOURCES,
    )
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=SweepSearcher(settings),
            scheduler=make_scheduler(settings, board_name),
            num_samples=settings.total_trials,
            max_concurrent_trials=max_concurrent,
            reuse_actors=False,  # function trainables cannot be reset in Ray 2.60
            trial_name_creator=trial_name,
            trial_dirname_creator=trial_name,
        ),
        run_config=tune.RunConfig(
            name=settings.name,
            storage_path=settings.storage,
            callbacks=[callback],
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=0),
        ),
    )
    grid = tuner.fit()
    if callback.final_statuses:
        # Interrupted (Ctrl-C): trials were left running or never created.
        interrupted = len(results.rows) < settings.total_trials or any(
            row.status in ("running", "pending") for row in results.rows.values()
        )
    else:
        # Ray Client (ray://): Tune ran remotely, with a copy of the callback; rebuild the
        # rows from the result grid instead.
        results = results_from_grid(grid, base.to_dict(), settings.max_steps)
        interrupted = len(grid) < settings.total_trials
    write_results(settings, results)
    return SweepOutcome(settings.path, results, interrupted, time.time() - started)


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

    manifest = {
        "udatune_version": udatune.__version__,
        "git_revision": git_revision(),
        "ray_version": ray.__version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "name": settings.name,
        "path": settings.path,
        "cluster": {"address": cluster.address, "cpus": cluster.cpus, "gpus": cluster.gpus},
        "settings": {
            **{k: v for k, v in asdict(settings).items() if k != "spaces"},
            "max_concurrent_resolved": max_concurrent,
            "spaces": [{"method": s.method, "searcher": s.searcher, "file": s.source, "space": asdict(s)} for s in settings.spaces],
        },
        "base_config": base.override({"train.steps": settings.max_steps}).to_dict(),
        "data_fingerprint": fingerprint,
    }
    write_bytes(f"{settings.path}/sweep.json", json.dumps(manifest, indent=2, default=str).encode())


def write_results(settings: SweepSettings, results: SweepResults) -> None:
    frame = results.frame()
    write_bytes(f"{settings.path}/results.csv", frame.to_csv(index=False).encode())
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    write_bytes(f"{settings.path}/results.parquet", buffer.getvalue())


def write_bytes(uri: str, data: bytes) -> None:
    """Write a file to a local folder or any filesystem pyarrow understands (s3://, gs://)."""
    import pyarrow.fs

    filesystem, path = pyarrow.fs.FileSystem.from_uri(uri if "://" in uri else str(Path(uri).resolve()))
    parent = path.rsplit("/", 1)[0]
    filesystem.create_dir(parent, recursive=True)
    with filesystem.open_output_stream(path) as out:
        out.write(data)


def exists(sweep_path: str) -> bool:
    """Whether a sweep already lives at this path (its ``sweep.json`` is there)."""
    import pyarrow.fs

    uri = f"{sweep_path}/sweep.json"
    filesystem, path = pyarrow.fs.FileSystem.from_uri(uri if "://" in uri else str(Path(uri).resolve()))
    return filesystem.get_file_info(path).type != pyarrow.fs.FileType.NotFound


def read_bytes(uri: str) -> bytes:
    import pyarrow.fs

    filesystem, path = pyarrow.fs.FileSystem.from_uri(uri if "://" in uri else str(Path(uri).resolve()))
    with filesystem.open_input_stream(path) as stream:
        return stream.read()


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


def default_storage() -> str:
    return str(Path("runs/sweeps").resolve())


def absolute_storage(storage: str) -> str:
    return storage if "://" in storage else str(Path(storage).expanduser().resolve())


def default_name() -> str:
    return "sweep-" + dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def summary_line(settings: SweepSettings) -> str:
    methods = ", ".join(s.method for s in settings.spaces) or "none"
    return (
        f"{settings.total_trials} trials ({settings.trials} searched over {methods}"
        f"{'' if not settings.baselines else f' + {2 * len(settings.seeds)} baselines'}), "
        f"{settings.max_steps} steps each, seeds {','.join(map(str, settings.seeds))}, {settings.scheduler.upper()}"
    )

