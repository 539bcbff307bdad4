"""The trial's Ray Train job: which Ray Train machinery it starts."""

import pytest

from udatune.tune.trainable import trainer_class


def test_a_trial_without_ray_datasets_starts_no_ray_data_actor():
    datasets = pytest.importorskip("ray.train.v2._internal.callbacks.datasets")
    from ray.train import ScalingConfig
    from ray.train.torch import TorchTrainer

    cls = trainer_class()
    assert issubclass(cls, TorchTrainer)  # still a TorchTrainer: torch backend, DDP when > 1 worker

    def loop(config):
        pass

    lean = cls(loop, scaling_config=ScalingConfig(num_workers=1))
    kinds = [type(c) for c in lean._create_default_callbacks()]
    assert datasets.DatasetsCallback not in kinds
    full = [type(c) for c in TorchTrainer(loop, scaling_config=ScalingConfig(num_workers=1))._create_default_callbacks()]
    assert datasets.DatasetsCallback in full
    assert [k for k in full if k is not datasets.DatasetsCallback] == kinds  # nothing else is dropped
