"""One test per Ray workaround (udatune/tune/ray_compat.py): each fails when the installed Ray
no longer has the private name it relies on, or stops behaving as the workaround assumes."""

import importlib
from pathlib import Path

import pytest
import ray

from udatune.tune import ray_compat


def test_the_installed_ray_is_one_the_workarounds_were_checked_on():
    assert ray_compat.tested(), f"Ray {ray.__version__}: check every workaround below, then add it to TESTED"


def test_the_local_only_flag_exists_and_is_put_back():
    constants = importlib.import_module(ray_compat.RAY_CONSTANTS_MODULE)
    before = getattr(constants, ray_compat.LOCAL_ONLY_FLAG)
    assert isinstance(before, bool)
    with ray_compat.local_only_ray():
        assert getattr(constants, ray_compat.LOCAL_ONLY_FLAG) is False
    assert getattr(constants, ray_compat.LOCAL_ONLY_FLAG) is before


def test_ray_init_still_takes_the_node_address_argument():
    import inspect

    # a hidden option: ray.init pops it from **kwargs instead of naming it in its signature
    assert f'kwargs.pop("{ray_compat.NODE_IP_ARGUMENT}"' in inspect.getsource(ray.init)
    assert ray_compat.loopback_init_options() == {ray_compat.NODE_IP_ARGUMENT: "127.0.0.1"}


def test_a_trial_without_ray_datasets_starts_no_ray_data_actor():
    from ray.train import ScalingConfig
    from ray.train.torch import TorchTrainer

    datasets = getattr(importlib.import_module(ray_compat.DATASETS_CALLBACK_MODULE), ray_compat.DATASETS_CALLBACK)
    cls = ray_compat.lean_torch_trainer()
    assert issubclass(cls, TorchTrainer) and cls is not TorchTrainer  # still a TorchTrainer: torch backend, DDP

    def loop(config):
        pass

    def defaults(trainer) -> list[type]:
        return [type(c) for c in getattr(trainer, ray_compat.DEFAULT_CALLBACKS_METHOD)()]

    lean = defaults(cls(loop, scaling_config=ScalingConfig(num_workers=1)))
    full = defaults(TorchTrainer(loop, scaling_config=ScalingConfig(num_workers=1)))
    assert datasets in full and datasets not in lean
    assert [k for k in full if k is not datasets] == lean  # nothing else is dropped


def test_a_restored_tuner_lets_this_driver_replace_its_callbacks(tmp_path):
    from ray import tune

    def trainable(config):
        tune.report({"score": 1.0})

    tuner = tune.Tuner(trainable, run_config=tune.RunConfig(name="x", storage_path=str(tmp_path)))
    mine = [tune.Callback()]
    ray_compat.replace_restored_callbacks(tuner, mine)
    local = getattr(tuner, ray_compat.LOCAL_TUNER_ATTR)
    assert local.get_run_config().callbacks is mine


def test_asha_keeps_its_trials_where_the_workaround_looks():
    from ray.tune.experiment import Trial
    from ray.tune.schedulers import AsyncHyperBandScheduler

    scheduler = AsyncHyperBandScheduler(time_attr="step", metric="m", mode="max", max_t=10, grace_period=1)
    trial = Trial("__fake", trial_id="t1", stub=True)
    scheduler.on_trial_add(None, trial)
    assert "t1" in getattr(scheduler, ray_compat.ASHA_TRIALS_ATTR)
    ray_compat.forget_asha_trial(scheduler, "t1")
    assert "t1" not in getattr(scheduler, ray_compat.ASHA_TRIALS_ATTR)


def test_a_trial_says_where_its_files_live_in_storage(tmp_path):
    import pyarrow.fs
    from ray.tune.experiment import Trial

    storage_module = importlib.import_module(Trial.__module__)
    storage = storage_module.StorageContext(storage_path=str(tmp_path), experiment_dir_name="exp", trial_dir_name="trial")
    trial = Trial("__fake", trial_id="t1", stub=True, storage=storage)
    where = ray_compat.trial_storage(trial)
    assert where is not None
    filesystem, folder = where
    assert isinstance(filesystem, pyarrow.fs.FileSystem) and folder.endswith("exp/trial")


def test_udatunes_files_are_dropped_from_the_staging_copy_tune_uploads(tmp_path):
    """What Tune copies into the driver's staging folder on a restore, and uploads back at each
    experiment checkpoint: udatune's own files are deleted there, Tune's are left alone. (The
    staging path needs a Ray session; here the name is checked on Ray's class, and the folder
    is one of ours. tests/cli/test_resume_cli.py shows the effect on a real resumed sweep.)"""
    from types import SimpleNamespace

    from ray.tune.experiment import Trial

    storage_class = importlib.import_module(Trial.__module__).StorageContext
    assert isinstance(getattr(storage_class, ray_compat.DRIVER_STAGING_ATTR), property)
    staging = tmp_path / "staging"
    (staging / "confirm").mkdir(parents=True)
    for name in ("trials.json", "state.json", "confirm/trials.json", "experiment_state-x.json"):
        (staging / name).write_text("{}")
    trial = SimpleNamespace(storage=SimpleNamespace(**{ray_compat.DRIVER_STAGING_ATTR: str(staging)}))
    ray_compat.drop_staged_copies([trial], ("trials.json", "state.json", "sweep.json", "confirm"))
    assert sorted(p.name for p in staging.iterdir()) == ["experiment_state-x.json"]
