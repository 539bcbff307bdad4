"""Which device a Train worker trains on, and how a trial that cannot use its GPU ends."""

import pytest
import torch

from udatune.errors import ConfigError
from udatune.tune.worker import failure_reason, final_failures, limit_gpu_memory, worker_device


@pytest.mark.parametrize("configured", ["auto", "cpu", "cuda", "cuda:1"])
def test_a_worker_with_a_gpu_trains_on_the_gpu_ray_assigned(configured):
    assert worker_device(configured, torch.device("cuda:0"), gpus_reserved=True, cuda_usable=True) == "cuda:0"


@pytest.mark.parametrize("assigned", [torch.device("cpu"), torch.device("cuda:0")])
def test_gpus_reserved_but_cuda_unusable_is_a_clear_error_not_cpu_training(assigned):
    # A driver older than the torch build: torch sees no CUDA, Ray Train hands out the CPU.
    with pytest.raises(ConfigError, match="--gpus-per-trial") as err:
        worker_device("auto", assigned, gpus_reserved=True, cuda_usable=False)
    assert "driver" in str(err.value) and "--gpus-per-trial 0" in str(err.value)
    assert isinstance(err.value, final_failures())  # the trial fails with this reason; no retry


def test_without_gpus_auto_is_the_cpu_and_an_explicit_device_stays():
    assert worker_device("auto", torch.device("cpu"), gpus_reserved=False, cuda_usable=False) == "cpu"
    assert worker_device("cpu", torch.device("cpu"), gpus_reserved=False, cuda_usable=True) == "cpu"
    assert worker_device("cuda", torch.device("cpu"), gpus_reserved=False, cuda_usable=False) == "cuda"


def test_out_of_gpu_memory_ends_the_trial_as_failed_with_what_to_change():
    err = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert isinstance(err, final_failures())
    reason = failure_reason(err)
    assert reason.startswith("out of GPU memory") and "--gpus-per-trial" in reason and "2.00 GiB" in reason


def test_the_memory_limit_leaves_the_cpu_alone():
    limit_gpu_memory(0.5, "cpu")  # no CUDA call on a CPU worker (it would raise here)
