"""Does one trial fit on the cluster? Answered before a sweep starts, never by waiting.

Ray Train waits for its workers' resources as long as ``RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S``
says, and a sweep sets that long (a queued trial legitimately waits for a running one). So a
trial that can never fit — GPUs asked for on a cluster without any, a worker bigger than every
node — would hang the sweep instead of failing. This module answers "does it fit?" from what
the nodes offer: for a private local Ray from this machine before Ray starts, for a cluster
from ``ray.nodes()`` right after connecting, before any sweep file is written.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from udatune.errors import ConfigError


@dataclass(frozen=True)
class NodeCapacity:
    cpus: float
    gpus: float


def local_capacity(num_cpus: int | None) -> list[NodeCapacity]:
    """What a private local Ray will offer: ``--num-cpus`` (else every core) and the GPUs
    CUDA makes visible here."""
    gpus = 0
    try:
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # a broken CUDA install offers no GPU; Ray would see none either
        gpus = 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return [NodeCapacity(float(num_cpus or cores), float(gpus))]


def cluster_capacity() -> list[NodeCapacity]:
    """What the connected Ray cluster's live nodes offer (``ray.nodes()``, a public API)."""
    import ray

    return [
        NodeCapacity(float(node["Resources"].get("CPU", 0.0)), float(node["Resources"].get("GPU", 0.0)))
        for node in ray.nodes()
        if node.get("Alive")
    ]


def workers_that_fit(node: NodeCapacity, cpus: float, gpus: float) -> int:
    """How many Train workers of ``cpus`` CPUs and ``gpus`` GPUs one node holds at once."""
    fit = math.floor(node.cpus / cpus + 1e-9) if cpus > 0 else math.inf
    if gpus > 0:
        fit = min(fit, math.floor(node.gpus / gpus + 1e-9))
    return int(fit) if math.isfinite(fit) else 1 << 30


def check_trial_fits(workers: int, cpus: float, gpus: float, nodes: list[NodeCapacity], where: str) -> None:
    """Raise a `ConfigError` when one trial's ``workers`` Train workers cannot all be placed."""
    total_cpus = sum(n.cpus for n in nodes)
    total_gpus = sum(n.gpus for n in nodes)
    offered = f"{where} has {len(nodes)} node(s) with {total_cpus:g} CPUs and {total_gpus:g} GPUs in all"
    need = f"one trial needs {workers} worker(s) × ({cpus:g} CPU, {gpus:g} GPU)"
    if gpus > 0 and total_gpus == 0:
        raise ConfigError(
            f"--gpus-per-trial {gpus:g}: {offered}, no GPU, so no trial could ever start. Leave "
            "--gpus-per-trial at 0 to train on CPU, or pass --address of a cluster with GPUs."
        )
    if sum(workers_that_fit(n, cpus, gpus) for n in nodes) < workers:
        raise ConfigError(
            f"{need}, but {offered} (largest node: {max((n.cpus for n in nodes), default=0):g} CPUs, "
            f"{max((n.gpus for n in nodes), default=0):g} GPUs), so no trial could ever start. Lower "
            "--workers-per-trial, --cpus-per-trial or --gpus-per-trial" + (", or raise --num-cpus." if where == "this machine" else ".")
        )
