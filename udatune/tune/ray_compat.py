"""Every use of a private or internal Ray name, in one place.

Ray's public API does not cover six things udatune needs. Each workaround below is used only
on a Ray whose minor version it was checked against (`TESTED`), and each has a fall-back for
any other Ray: the sweep then runs on the public API alone, a little slower or noisier, or —
for resume, which has no public way at all — refuses with a clear message. Resume already
refuses a sweep written by another Ray minor version (restore.check_compatible).

tests/tune/test_ray_compat.py has one test per workaround that fails when the installed Ray no
longer has the name it relies on, so a Ray upgrade shows up as a failing test, not as a sweep
that silently behaves differently. Bump `TESTED` only once those tests pass on the new Ray.
"""

from __future__ import annotations

import contextlib
import importlib
import shutil
from pathlib import Path
from typing import Iterator

from udatune.errors import UdatuneError

TESTED = ("2.60",)  # Ray minor versions the workarounds below were checked on

# The private names, spelled once (the tests import them from here).
RAY_CONSTANTS_MODULE = "ray._private.ray_constants"
LOCAL_ONLY_FLAG = "ENABLE_RAY_CLUSTER"
NODE_IP_ARGUMENT = "_node_ip_address"
DATASETS_CALLBACK_MODULE = "ray.train.v2._internal.callbacks.datasets"
DATASETS_CALLBACK = "DatasetsCallback"
DEFAULT_CALLBACKS_METHOD = "_create_default_callbacks"
LOCAL_TUNER_ATTR = "_local_tuner"
ASHA_TRIALS_ATTR = "_trial_info"
TRIAL_FS_PATH_ATTR = "trial_fs_path"
STORAGE_FILESYSTEM_ATTR = "storage_filesystem"
DRIVER_STAGING_ATTR = "experiment_driver_staging_path"


def tested() -> bool:
    """Whether the installed Ray is one the workarounds were checked on."""
    import ray

    return ".".join(ray.__version__.split(".")[:2]) in TESTED


# --- 1. a local Ray bound to 127.0.0.1 -------------------------------------------------------------


@contextlib.contextmanager
def local_only_ray() -> Iterator[None]:
    """While ``ray.init`` starts a private Ray: Ray's "no clusters" mode, which binds every
    port to the loopback interface.

    Ray reads the mode from ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` once, when ``ray`` is first
    imported (into a private constant); cluster.py sets the variable first, but a process that
    imported Ray before (a test, a notebook) needs the constant set too. Fall-back on another
    Ray: the environment variable alone.
    """
    if not tested():
        yield
        return
    constants = importlib.import_module(RAY_CONSTANTS_MODULE)
    before = getattr(constants, LOCAL_ONLY_FLAG)
    setattr(constants, LOCAL_ONLY_FLAG, False)
    try:
        yield
    finally:
        setattr(constants, LOCAL_ONLY_FLAG, before)


def loopback_init_options() -> dict:
    """``ray.init`` options that put a private Ray's node on 127.0.0.1: its underscore
    (semi-private) node address argument. Fall-back on another Ray: none (Ray picks the
    address; the no-clusters mode above still binds to the loopback interface)."""
    return {NODE_IP_ARGUMENT: "127.0.0.1"} if tested() else {}


# --- 2. no Ray Data actor for a Train run without datasets ----------------------------------------


def lean_torch_trainer():
    """`TorchTrainer`, minus the Ray Data actor it starts for every run even without datasets.

    Each Ray Train run starts a ``DatasetManager`` actor for its ``datasets``; a trial passes
    none (its data is built in the worker), so that actor is a process that imports Ray Data,
    costs about 2 CPU-seconds per trial and then idles (bench/processes.py measured it). Ray
    Train's default callbacks are private; the subclass drops only the datasets callback.
    Fall-back on another Ray, or when the names are gone: Ray's `TorchTrainer` as it is.
    """
    from ray.train.torch import TorchTrainer

    if not tested() or not hasattr(TorchTrainer, DEFAULT_CALLBACKS_METHOD):
        return TorchTrainer
    try:
        datasets_callback = getattr(importlib.import_module(DATASETS_CALLBACK_MODULE), DATASETS_CALLBACK)
    except (ImportError, AttributeError):
        return TorchTrainer

    def create_default_callbacks(self):
        callbacks = getattr(super(LeanTorchTrainer, self), DEFAULT_CALLBACKS_METHOD)()
        if getattr(self, "datasets", None):
            return callbacks
        return [c for c in callbacks if not isinstance(c, datasets_callback)]

    LeanTorchTrainer = type("LeanTorchTrainer", (TorchTrainer,), {DEFAULT_CALLBACKS_METHOD: create_default_callbacks})
    return LeanTorchTrainer


# --- 3. this driver's callbacks on a restored experiment --------------------------------------------


def replace_restored_callbacks(tuner, callbacks: list) -> None:
    """Give a restored experiment this driver's callbacks.

    ``Tuner.restore`` takes no `RunConfig`: it unpickles the one saved when the sweep started,
    whose callbacks hold that driver's (empty) rows and no display. Replace them with ours, which
    hold the rows saved so far and this terminal's live table. Under Ray Client (ray://) there is
    no local tuner; it keeps the saved callbacks and the rows come from the result grid.
    Fall-back on another Ray: none exists in the public API, so refuse rather than let the old
    callbacks overwrite the saved rows.
    """
    if not tested():
        import ray

        raise UdatuneError(f"Resuming a sweep needs Ray {' or '.join(TESTED)} (installed: {ray.__version__}).")
    local = getattr(tuner, LOCAL_TUNER_ATTR, None)
    if local is not None:
        local.get_run_config().callbacks = callbacks


# --- 4. ASHA forgets a trial it does not rank -------------------------------------------------------


def forget_asha_trial(scheduler, trial_id: str) -> None:
    """Drop a trial from ASHA's bookkeeping (a baseline or failed trial, which never entered a
    rung). Fall-back on another Ray: keep it — one small dict entry per such trial."""
    if tested():
        getattr(scheduler, ASHA_TRIALS_ATTR, {}).pop(trial_id, None)


# --- 5. where a trial's logs live in storage -------------------------------------------------------


def trial_storage(trial) -> tuple[object, str] | None:
    """``(pyarrow filesystem, folder)`` of the trial's files in the sweep's storage, or None
    where this Ray does not say (then a resumed trial starts its Tune logs afresh)."""
    if not tested():
        return None
    storage = getattr(trial, "storage", None)
    folder = getattr(storage, TRIAL_FS_PATH_ATTR, None)
    filesystem = getattr(storage, STORAGE_FILESYSTEM_ATTR, None)
    return None if folder is None or filesystem is None else (filesystem, folder)


# --- 6. a restored experiment must not carry stale copies of udatune's files -----------------------


def drop_staged_copies(trials, names: tuple[str, ...]) -> None:
    """Delete ``names`` (files or folders of the sweep folder) from the driver's staging folder.

    Restoring an experiment, Tune copies every .json and .pkl of the experiment folder into
    this driver's staging folder, and at each experiment checkpoint uploads that folder back:
    the copies of udatune's own files taken at the restore (trials.json, state.json, ...) would
    overwrite the live ones, again and again, until the sweep ends, so a second interruption
    would leave the rows as they were at the first. Called on the first step, after the copy
    and before the first upload. Fall-back on another Ray: nothing (at the end of a run the
    driver writes its files again, so only a run killed mid-way keeps the stale rows).
    """
    if not tested() or not trials:
        return
    staging = getattr(getattr(trials[0], "storage", None), DRIVER_STAGING_ATTR, None)
    if not staging:
        return
    for name in names:
        path = Path(staging, name)
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
