"""The stop flag that rank 0 broadcasts to the other DDP ranks lives on the worker's device.

With GPUs, Ray Train's process group is NCCL, which rejects CPU tensors. The fake backend
below behaves like it: a collective on a tensor outside its device raises. The worker's device
is ``meta`` here, a device that is not the CPU and needs no GPU.
"""

import pytest
import torch

from udatune.tune.stopping import agree_on_stop


class DeviceBoundBackend:
    """A process group bound to one device, as NCCL is bound to the GPU; rank 0 says ``answer``."""

    def __init__(self, device: str, answer: bool = False) -> None:
        self.device, self.answer, self.seen = torch.device(device), answer, []

    def broadcast(self, tensor: torch.Tensor, src: int) -> None:
        if tensor.device != self.device:
            raise RuntimeError(f"No backend type associated with device type {tensor.device.type}")
        self.seen.append((tensor.device, src))
        if tensor.device.type != "meta":
            tensor.fill_(int(self.answer))


def test_the_stop_flag_is_made_on_the_workers_device():
    backend = DeviceBoundBackend("meta")
    assert agree_on_stop(True, rank=0, device=torch.device("meta"), broadcast=backend.broadcast) is True
    assert backend.seen == [(torch.device("meta"), 0)]


def test_a_flag_made_on_the_cpu_is_what_a_device_bound_backend_rejects():
    # The fake backend does reject what the old code sent (a CPU tensor on a GPU worker).
    with pytest.raises(RuntimeError, match="device type cpu"):
        DeviceBoundBackend("meta").broadcast(torch.tensor([0]), src=0)


@pytest.mark.parametrize("answer", [True, False])
def test_other_ranks_follow_rank_zeros_answer(answer):
    backend = DeviceBoundBackend("cpu", answer=answer)
    assert agree_on_stop(not answer, rank=1, device=torch.device("cpu"), broadcast=backend.broadcast) is answer
