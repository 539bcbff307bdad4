"""Resume a sweep: find it, check that it can be resumed, and carry on where it stopped.

`prepare_resume` does every check before anything starts or is written — the name or folder
exists and holds a sweep, written in a format (and with a Ray) this udatune restores, and no
driver is running it still. `resume_sweep` then restores the experiment with
``Tuner.restore`` — Tune brings back its trials and the searcher's state, so the sweep ends with
exactly the trials it asked for — resuming unfinished trials and those that errored (a crash,
a lost node). Each resumed trial's Ray Train run, named by the trial id, continues from its last
checkpoint; a trial whose run had already ended is not trained again (see trainable.py). The
rows of the trials that ended are taken over from ``trials.json`` unchanged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import PurePosixPath
from typing import Callable

from udatune.config import TrialConfig
from udatune.errors import ConfigError, UdatuneError
from udatune.tune import ray_compat, store
from udatune.tune.driver_state import DriverState, effective_state
from udatune.tune.results import SweepResults
from udatune.tune.space import Param, PolicySpace, SearchSpace
from udatune.tune.storage import kind
from udatune.tune.callbacks import sweep_callbacks
from udatune.tune.settings import SweepSettings
from udatune.tune.sweep import SweepOutcome, board_name, fit_and_record, make_trainable, quiet_optuna
from udatune.tune.stopping import start_stop_board
from udatune.tune.trainable import TrialResources


@dataclass(frozen=True)
class ResumePlan:
    """A sweep that passed every check, ready to resume."""

    path: str
    manifest: store.Manifest
    settings: SweepSettings
    base: TrialConfig  # the trials' base config (steps = the sweep's budget)
    state: str  # interrupted | finished | unknown (see driver_state.effective_state)
    errored: int  # trials that ended with an error (resumed too)

    @property
    def nothing_to_do(self) -> bool:
        return self.state == "finished" and self.errored == 0


# --- checking it -----------------------------------------------------------------------------------


def check_compatible(path: str, manifest: store.Manifest) -> None:
    """The sweep's format, and the Ray that wrote Tune's state, must be ours."""
    import udatune

    written = manifest.format
    version = manifest.udatune_version
    if written != store.FORMAT:
        raise ConfigError(
            f"Sweep {path} was written by udatune {version} (sweep format {written if written is not None else 'none'}); "
            f"this udatune {udatune.__version__} resumes sweep format {store.FORMAT} only. Resume it with udatune {version}, "
            "or start a new sweep with `udatune search`."
        )
    ray_then, ray_now = str(manifest.ray_version), metadata.version("ray")
    if ray_then.split(".")[:2] != ray_now.split(".")[:2]:
        raise ConfigError(
            f"Sweep {path} was run with Ray {ray_then or 'unknown'}; this is Ray {ray_now}, and Tune restores an experiment "
            f"only with the Ray version that saved it. Install ray=={ray_then} to resume it, or start a new sweep."
        )
    if not has_experiment(path):
        raise ConfigError(
            f"Sweep {path} has no Tune experiment (tuner.pkl): its driver stopped before the first trial was created. "
            "There is nothing to resume; start it again with `udatune search`."
        )


def has_experiment(path: str) -> bool:
    """Whether Tune created the sweep's experiment (what a resume restores): a driver stopped
    before its first trial leaves only udatune's own files."""
    return kind(f"{path}/tuner.pkl") == "file"


def check_not_running(path: str, state: DriverState | None) -> None:
    if effective_state(state) == "running":
        raise ConfigError(
            f"Sweep {path} is still running ({state.where}); two drivers would run its trials twice. "
            "Stop that driver first (Ctrl-C, or SIGTERM), or wait for it to finish."
        )


def settings_from_manifest(path: str, manifest: store.Manifest) -> SweepSettings:
    """The sweep's settings as written at its start (its name and storage taken from where it
    lies now: a sweep folder may have been moved)."""
    try:
        raw = dict(manifest.settings)
        raw.pop("max_concurrent_resolved", None)
        spaces = tuple(space_from_dict(s["space"]) for s in raw.pop("spaces"))
        where = PurePosixPath(path) if "://" not in path else None
        raw.update(
            name=where.name if where else path.rstrip("/").rsplit("/", 1)[1],
            storage=str(where.parent) if where else path.rstrip("/").rsplit("/", 1)[0],
            seeds=tuple(raw["seeds"]),
            plan=tuple(raw.get("plan", ())),
            shared=tuple(raw.get("shared", ())),
            confirm_seeds=tuple(raw.get("confirm_seeds", ())),
            resources=TrialResources(**raw["resources"]),
        )
        settings = SweepSettings(spaces=spaces, **raw)
        settings.check_shared()  # hand-edited values stop here, before Ray starts or a file is written
        settings.check_confirm()
        return settings
    except (KeyError, TypeError, ValueError, IndexError, ConfigError) as err:
        raise ConfigError(f"{path}/sweep.json does not describe a sweep this udatune can resume ({type(err).__name__}: {err}).") from None


def space_from_dict(raw: dict) -> SearchSpace:
    """A `SearchSpace` back from the manifest (its `asdict` form)."""

    def param(value: dict) -> Param:
        return Param(**{**value, "choices": tuple(value.get("choices", ()))})

    policy = dict(raw["policy"])
    for key in ("probability", "magnitude", "n", "m"):
        policy[key] = param(policy[key])
    policy["ops"] = tuple(policy["ops"])
    params = {name: param(value) for name, value in raw["params"].items()}
    return SearchSpace(**{**raw, "policy": PolicySpace(**policy), "params": params})


def prepare_resume(target: str, storage: str) -> ResumePlan:
    """Every check `udatune resume` makes before it starts anything; raises a `UdatuneError`."""
    path = store.locate(target, storage)
    manifest = store.read_manifest(path)
    check_compatible(path, manifest)
    state = store.read_state(path)
    check_not_running(path, state)
    settings = settings_from_manifest(path, manifest)
    try:
        if not manifest.base_config:
            raise ConfigError("it is missing")
        base = TrialConfig.from_dict(manifest.base_config, source=f"{path}/{store.MANIFEST}")
    except UdatuneError as err:
        raise ConfigError(f"{path}/{store.MANIFEST} has no usable base config ({err}); the sweep cannot be resumed.") from None
    previous = store.read_results(path)  # a damaged trials.json stops here, named
    errored = sum(row.status == "error" for row in previous.rows.values()) if previous else 0
    return ResumePlan(path, manifest, settings, base, effective_state(state), errored)


# --- running it ------------------------------------------------------------------------------------


def resume_sweep(plan: ResumePlan, cluster, listener: Callable[[SweepResults], None] | None = None) -> SweepOutcome:
    """Restore the experiment on a connected cluster and run it to the end (or the next stop)."""
    from ray import tune

    quiet_optuna()
    started = time.time()
    settings = plan.settings
    results = store.read_results(plan.path) or SweepResults(plan.base.to_dict(), settings.max_steps)
    callbacks = sweep_callbacks(plan.path, results, listener)
    board = start_stop_board(board_name(settings))  # noqa: F841  (kept alive while the sweep runs)
    tuner = tune.Tuner.restore(
        plan.path,
        make_trainable(settings, plan.base.to_dict()),
        resume_unfinished=True,
        resume_errored=True,
    )
    ray_compat.replace_restored_callbacks(tuner, callbacks)
    if listener is not None:
        listener(results)
    return fit_and_record(tuner, settings, results, callbacks[0], started)
