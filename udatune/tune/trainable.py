"""One sweep trial = one Ray Train job.

Early stopping is cooperative. When Tune stops a function trial it kills the trial's actor;
its Train controller dies with it without shutting down, and with no dashboard running Ray
Train cannot notice (its placement-group cleaner asks the dashboard's state API), so the
workers' CPUs stay reserved and the sweep stalls. Instead the scheduler marks the trial on a
`StopBoard` actor; the Train workers check it at every logged step and end the run normally,
which releases the workers and their placement group.

`sweep_trial` is the Tune function trainable. It reserves no CPU itself (see `DRIVER_RESOURCES`):
it only resolves the trial's `TrialConfig`, builds a `TorchTrainer` and waits on ``fit()``, while
the training runs in the Train workers that `ScalingConfig` reserves. Metrics reach Tune through
`TuneReportCallback`.

`train_worker` runs on every Train worker: it calls the same `run_trial` as ``udatune train``,
with hooks that report each evaluation to Ray Train together with a checkpoint, and resumes from
Ray Train's latest checkpoint when there is one.

Failures, and what each costs:

* a lost worker or node: Ray Train restarts the worker group from the last checkpoint (its
  `FailureConfig`); a lost trial actor or Train controller: Tune restarts the trial, whose Train
  run — named by the trial id — resumes from the same checkpoint (the sweep's `FailureConfig`);
* a training that cannot go on — the loss diverged (`TrialDiverged`), the data is unusable
  (`UdatuneError`) — would fail again on every retry, so it is not raised: the workers report
  it (``failure`` = the reason) and end normally, and the trial is recorded as failed;
* when a trial's Train run ends, rank 0 writes ``<train storage>/<trial id>/outcome.json``.
  A trial started again after its run had ended (the driver was killed before Tune saved
  that the trial had finished) finds it, repeats its last report and ends without training.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from udatune.config import TrialConfig
from udatune.tune import store

# The trial function only waits on the Train controller: it reserves a little memory (which
# every Ray node has) and no CPU, so all CPUs and GPUs go to Train workers. Reserving even
# 0.01 CPU per trial would keep e.g. two 1-CPU trials from sharing a 2-CPU machine.
DRIVER_RESOURCES = {"cpu": 0, "memory": 256 * 1024**2}


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


@dataclass(frozen=True)
class TrialResources:
    """What each trial's Ray Train job reserves: ``workers`` data-parallel workers, each with
    ``cpus`` CPUs and ``gpus`` GPUs (fractions allowed, e.g. 0.5 to pack two trials per GPU)."""

    workers: int = 1
    cpus: float = 1.0
    gpus: float = 0.0

    @property
    def loader_workers(self) -> int:
        """Loader processes per Train worker: the worker's CPUs beyond the one that trains
        (none with one CPU: a loader process would only compete with the training for it)."""
        return max(int(self.cpus) - 1, 0)

    def scaling_config(self):
        from ray.train import ScalingConfig

        per_worker = {"CPU": self.cpus}
        if self.gpus:
            per_worker["GPU"] = self.gpus
        return ScalingConfig(num_workers=self.workers, use_gpu=self.gpus > 0, resources_per_worker=per_worker)


def trial_config(base: dict, config: dict) -> TrialConfig:
    """The trial's full config: the sweep's base, then the trial's overrides and seed."""
    cfg = TrialConfig.from_dict(base, source="sweep config")
    overrides = dict(config.get("overrides", {}))
    overrides["train.seed"] = int(config.get("seed", cfg.train.seed))
    return cfg.override(overrides, source=f"trial {config.get('method', '?')}")


def sweep_trial(
    config: dict,
    base: dict,
    resources: TrialResources,
    train_storage: str,
    stop_board: str | None = None,
    evaluate_test: bool = False,
    max_failures: int = 0,
) -> None:
    """Tune function trainable: one `TorchTrainer` run for this trial's config.

    ``evaluate_test``: also score the test split after the last step and report it to Tune
    (``test_miou``, ``test_iou/<class>``) — `udatune confirm` does; a search never looks at test.
    ``max_failures``: restarts of the Train run's workers (from the last checkpoint) after a
    worker or its node is lost.
    """
    import ray.train
    import ray.tune
    from ray.tune.integration.ray_train import TuneReportCallback

    cfg = trial_config(base, config)
    trial_id = ray.tune.get_context().get_trial_id()
    outcome_file = store.outcome_uri(train_storage, trial_id)
    ended = store.read_outcome(outcome_file)
    if ended is not None:
        if ended.metrics:
            ray.tune.report(ended.metrics)
        return
    trainer = trainer_class()(
        train_worker,
        train_loop_config={
            "config": cfg.to_dict(), "trial_id": trial_id, "stop_board": stop_board, "evaluate_test": evaluate_test,
            "outcome_file": outcome_file, "gpus": resources.gpus,
        },
        scaling_config=resources.scaling_config(),
        run_config=ray.train.RunConfig(
            # The trial id, not a timestamp: a restarted trial finds its Train run (and its
            # checkpoints) again under the same name.
            name=trial_id,
            storage_path=train_storage,
            callbacks=[TuneReportCallback()],
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=1),
            failure_config=ray.train.FailureConfig(max_failures=max_failures),
        ),
    )
    trainer.fit()


def trainer_class():
    """`TorchTrainer`, without the Ray Data actor it would start for a run without datasets
    (see ray_compat.lean_torch_trainer)."""
    from udatune.tune.ray_compat import lean_torch_trainer

    return lean_torch_trainer()


def failure_reason(err: Exception) -> str:
    """One line: ``diverged: loss became nan by step 40``, or a user error's message."""
    import torch

    from udatune.train.step import TrialDiverged

    if isinstance(err, torch.cuda.OutOfMemoryError):
        return ("out of GPU memory: lower train.batch_size or train.crop, or give each trial more "
                "--gpus-per-trial (" + " ".join(str(err).split())[:200] + ")")
    prefix = "diverged: " if isinstance(err, TrialDiverged) else ""
    return prefix + " ".join(str(err).split())


def final_failures() -> tuple[type[Exception], ...]:
    """Exceptions that end a trial as failed instead of being retried: they would recur.
    A CUDA out-of-memory error is one: the same config on the same share of a GPU runs out again."""
    import torch

    from udatune.errors import UdatuneError
    from udatune.train.step import TrialDiverged

    return (TrialDiverged, UdatuneError, torch.cuda.OutOfMemoryError)


def worker_device(configured: str, assigned, gpus_reserved: bool, cuda_usable: bool) -> str:
    """The device a Train worker trains on.

    With GPUs reserved, it is the one Ray Train assigned, whatever the config says; and CUDA must
    work: a torch build the GPU's driver is too old for reports no CUDA, and Ray Train then hands
    out the CPU — a GPU trial that silently trains on the CPU. Without GPUs, ``auto`` is the CPU
    Ray assigned, and an explicit device stays as configured (``cuda`` then fails as in
    ``udatune train``: Ray hides the GPUs from a worker that reserved none).
    """
    import torch

    from udatune.errors import ConfigError

    if gpus_reserved:
        if not cuda_usable or torch.device(assigned).type != "cuda":
            raise ConfigError(
                "This trial reserved GPUs (--gpus-per-trial) but CUDA is not usable in its worker "
                f"(torch {torch.__version__}, built for CUDA {torch.version.cuda or 'none'}; Ray assigned {assigned}): "
                "the NVIDIA driver may be older than this torch build needs, or the GPUs are hidden. "
                "Install a torch build that matches the driver, or run with --gpus-per-trial 0 to train on CPUs."
            )
        return str(assigned)
    return str(assigned) if configured == "auto" else configured


def limit_gpu_memory(gpus: float, device) -> None:
    """A trial with a fraction of a GPU may allocate only that fraction of its memory, so
    trials packed on one GPU fail alone (out of memory) instead of starving each other."""
    import torch

    if 0 < gpus < 1 and torch.device(device).type == "cuda":
        torch.cuda.set_per_process_memory_fraction(gpus, torch.device(device))


def train_worker(loop_config: dict) -> None:
    """Runs on each Ray Train worker (rank 0 reports the metrics Tune sees)."""
    import ray.train
    import ray.train.torch

    from udatune.data.registry import build_data
    from udatune.train.loop import run_trial

    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    cfg = TrialConfig.from_dict(loop_config["config"])
    updates: dict[str, Any] = {"train.evaluate_test": bool(loop_config.get("evaluate_test", False))}
    if world > 1:
        # Data parallel: every worker draws different batches (the labeled subset is fixed by
        # data.split_seed, so it is the same on all workers); DDP syncs the gradients.
        updates["train.seed"] = cfg.train.seed * 1000 + rank
    gpus = float(loop_config.get("gpus", 0.0))
    assigned = ray.train.torch.get_device()  # the worker's GPU when it reserved one, else the CPU
    # DDP across the trial's workers; a single worker trains its model as is.
    wrap_model = ray.train.torch.prepare_model if world > 1 else None

    reporter = TrainReporter(
        rank, world, loop_config.get("trial_id", ""), stop_board(loop_config.get("stop_board")), device=assigned
    )
    checkpoint = ray.train.get_checkpoint()
    outcome = "done"
    with checkpoint.as_directory() if checkpoint else contextlib.nullcontext() as resume:
        try:
            import torch

            updates["train.device"] = worker_device(cfg.train.device, assigned, gpus > 0, torch.cuda.is_available())
            cfg = cfg.override(updates, source="train worker")
            limit_gpu_memory(gpus, cfg.train.device)
            data = build_data(cfg.data)
            run_trial(cfg, data, hooks=reporter, resume=Path(resume) if resume else None, wrap_model=wrap_model)
        except StopRequested:
            outcome = "stopped"  # by the scheduler: end normally so Ray Train releases the workers
        except final_failures() as err:
            outcome = "failed"
            reporter.failed(failure_reason(err))
    if rank == 0 and loop_config.get("outcome_file"):
        store.write_outcome(loop_config["outcome_file"], store.Outcome(outcome, reporter.last_report))


class TrainReporter:
    """Loop hooks that report every evaluation to Ray Train, with a checkpoint.

    It also times the loop: wall time from the worker's start to the loop's start record is
    set-up (data, model), wall time between records is training (steps and batch loading)
    when a train record ends it, and evaluation when an eval record does; checkpoint writing
    is timed separately. The sweep's overhead benchmark sums these.
    """

    def __init__(
        self, rank: int, world: int = 1, trial_id: str = "", board=None, clock=time.perf_counter, device=None
    ) -> None:
        self.rank, self.world, self.trial_id, self.board = rank, world, trial_id, board
        self.device = device  # the worker's torch device: collectives run on it (NCCL takes no CPU tensors)
        self.clock = clock  # a monotonic clock in seconds (a test passes its own)
        self.last_train: dict = {}
        self.setup_seconds = 0.0
        self.train_seconds = 0.0
        self.eval_seconds = 0.0
        self.checkpoint_seconds = 0.0
        self.last_metrics: dict = {}  # the last val report (repeated with the test scores)
        self.last_report: dict = {}  # whatever was reported last
        self.started = time.time()
        self.process_started = process_start_time()
        self.mark = self.clock()

    def __call__(self, record: dict, save) -> None:
        import ray.train

        now = self.clock()
        if record["kind"] == "start":
            self.setup_seconds += now - self.mark  # data, model and loaders: trial start-up
            self.mark = now
            return
        if record["kind"] == "train":
            self.train_seconds += now - self.mark
            self.last_train = record
            self.check_stop()
            self.mark = self.clock()
            return
        if record.get("split") == "test":
            # The end of the run: the test scores, with the last val metrics, no checkpoint.
            self.report({**self.last_metrics, **scores_on_test(record)})
            return
        if record.get("split") != "val":
            self.mark = now
            return
        self.eval_seconds += now - self.mark
        metrics = self.metrics(record)
        self.last_metrics = metrics
        with tempfile.TemporaryDirectory(prefix="udatune-ckpt-") as tmp:
            checkpoint = None
            if self.rank == 0:
                tick = self.clock()
                save(Path(tmp))
                self.checkpoint_seconds += self.clock() - tick
                checkpoint = ray.train.Checkpoint.from_directory(tmp)
            self.report(metrics, checkpoint=checkpoint)
        self.mark = self.clock()

    def report(self, metrics: dict, checkpoint=None) -> None:
        import ray.train

        ray.train.report(metrics, checkpoint=checkpoint)
        self.last_report = metrics

    def failed(self, reason: str) -> None:
        """Report why training cannot go on, with the last evaluation's scores (Tune insists on
        the searched metric in every report; the row ignores them once it is failed)."""
        from udatune.tune.results import FAILURE

        last = self.last_metrics
        self.report({"step": last.get("step", 0), "val_miou": last.get("val_miou", float("nan")),
                     "best_miou": last.get("best_miou", float("nan")), FAILURE: reason})

    def check_stop(self) -> None:
        """Raise `StopRequested` once the scheduler has stopped this trial (all ranks agree:
        rank 0 asks, and DDP ranks follow its answer)."""
        if self.board is None:
            return
        import ray

        stop = False
        if self.rank == 0:
            try:
                stop = bool(ray.get(self.board.should_stop.remote(self.trial_id)))
            except ray.exceptions.RayActorError:
                pass  # the board went with the driver's node: nobody stops this trial any more
        if self.world > 1:
            import torch.distributed as dist

            stop = agree_on_stop(stop, self.rank, self.device or "cpu", dist.broadcast)
        if stop:
            raise StopRequested

    def metrics(self, record: dict) -> dict:
        """What Tune sees after each eval: val mIoU, loss terms, mask ratio, step, timings."""
        train = self.last_train
        metrics = {
            "step": record["step"],
            "val_miou": record["miou"],
            "best_miou": record["best_miou"],
            **{k: v for k, v in record.items() if k.startswith("iou/")},
            "setup_seconds": self.setup_seconds,
            "train_seconds": self.train_seconds,
            "eval_seconds": self.eval_seconds,
            "checkpoint_seconds": self.checkpoint_seconds,
            "worker_started": self.started,
            "process_started": self.process_started,
            "workers": self.world,  # data-parallel Train workers of this trial
        }
        for key in ("loss", "loss_sup", "loss_unsup", "mask_ratio", "lambda_eff", "lr"):
            if key in train:
                metrics[key] = train[key]
        return metrics


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


def scores_on_test(record: dict) -> dict:
    """The test split's scores as Tune sees them: ``test_miou`` and ``test_iou/<class>``."""
    return {"test_miou": record["miou"], **{f"test_{k}": v for k, v in record.items() if k.startswith("iou/")}}


def process_start_time() -> float:
    """When this process started (Unix time): for a Train worker, about when Ray granted its
    trial's resources. Linux reads it from /proc; elsewhere it is now."""
    import os

    try:
        with open("/proc/self/stat") as file:
            ticks = int(file.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as file:
            boot = next(int(line.split()[1]) for line in file if line.startswith("btime"))
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time()
    return boot + ticks / os.sysconf("SC_CLK_TCK")
