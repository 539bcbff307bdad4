"""Stopping a trial early, cooperatively: the stop board.

When Tune stops a function trial it kills the trial's actor; its Train controller dies with it
without shutting down, and with no dashboard running Ray Train cannot notice (its placement-group
cleaner asks the dashboard's state API), so the workers' CPUs stay reserved and the sweep stalls.
Instead the scheduler marks the trial on a `StopBoard` actor; the Train workers check it at every
logged step (`udatune.tune.worker.TrainReporter.check_stop`) and end the run normally, which
releases the workers and their placement group.
"""

from __future__ import annotations

STOP_BOARD_NAMESPACE = "udatune"


class StopRequested(Exception):
    """Raised from the loop hook to end a trial the scheduler has stopped."""


class StopBoard:
    """Trial ids the scheduler has stopped (a Ray actor; see `start_stop_board`)."""

    def __init__(self) -> None:
        self.stopped: set[str] = set()

    def stop(self, trial_id: str) -> None:
        self.stopped.add(trial_id)

    def should_stop(self, trial_id: str) -> bool:
        return trial_id in self.stopped


def start_stop_board(name: str):
    """The board, on the driver's node: it lives as long as the sweep, not as long as a worker
    node that may be lost."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    return ray.remote(num_cpus=0)(StopBoard).options(
        name=name, namespace=STOP_BOARD_NAMESPACE, get_if_exists=True, scheduling_strategy=here
    ).remote()


def stop_board(name: str | None):
    """The named board, or None (e.g. a trial run outside a sweep)."""
    import ray

    if not name:
        return None
    try:
        return ray.get_actor(name, namespace=STOP_BOARD_NAMESPACE)
    except ValueError:
        return None


def agree_on_stop(stop: bool, rank: int, device, broadcast) -> bool:
    """Rank 0's answer, on every rank: ``broadcast(tensor, src=0)`` as `torch.distributed` does.

    The flag is made on the worker's device: with GPUs Ray Train's process group is NCCL,
    which rejects CPU tensors (every multi-worker GPU trial used to die at its first log step).
    Rank 0 already knows its answer and does not read the flag back.
    """
    import torch

    flag = torch.tensor([int(stop)], device=device)
    broadcast(flag, src=0)
    return stop if rank == 0 else bool(flag.item())
