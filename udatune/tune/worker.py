"""What runs on every Ray Train worker of a trial.

`train_worker` calls the same `run_trial` as ``udatune train``, with `TrainReporter` as its
hooks: each evaluation is reported to Ray Train together with a checkpoint (Tune sees it through
`TuneReportCallback`), and a run resumes from Ray Train's latest checkpoint when there is one.

A training that cannot go on — the loss diverged (`TrialDiverged`), the data is unusable
(`UdatuneError`), CUDA ran out of memory — would fail again on every retry, so it is not raised:
the workers report it (``failure`` = the reason) and end normally, and the trial is recorded as
failed. When the run ends, rank 0 writes the trial's ``outcome.json`` (see trainable.py).
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path
from typing import Any

from udatune.config import TrialConfig
from udatune.tune import store
from udatune.tune.stopping import StopRequested, agree_on_stop, stop_board
from udatune.tune.timing import LoopTimes


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
    """Loop hooks that report every evaluation to Ray Train, with a checkpoint, and check the
    stop board at every train record. ``times`` splits the worker's time into phases."""

    def __init__(
        self, rank: int, world: int = 1, trial_id: str = "", board=None, clock=time.perf_counter, device=None
    ) -> None:
        self.rank, self.world, self.trial_id, self.board = rank, world, trial_id, board
        self.device = device  # the worker's torch device: collectives run on it (NCCL takes no CPU tensors)
        self.times = LoopTimes(clock)
        self.last_train: dict = {}
        self.last_metrics: dict = {}  # the last val report (repeated with the test scores)
        self.last_report: dict = {}  # whatever was reported last

    def __call__(self, record: dict, save) -> None:
        import ray.train

        if record["kind"] == "start":
            self.times.end("setup")  # data, model and loaders: trial start-up
            return
        if record["kind"] == "train":
            self.times.end("train")
            self.last_train = record
            self.check_stop()
            self.times.skip()
            return
        if record.get("split") == "test":
            # The end of the run: the test scores, with the last val metrics, no checkpoint.
            self.report({**self.last_metrics, **scores_on_test(record)})
            return
        if record.get("split") != "val":
            self.times.skip()
            return
        self.times.end("eval")
        metrics = self.metrics(record)
        self.last_metrics = metrics
        with tempfile.TemporaryDirectory(prefix="udatune-ckpt-") as tmp:
            checkpoint = None
            if self.rank == 0:
                with self.times.checkpointing():
                    save(Path(tmp))
                checkpoint = ray.train.Checkpoint.from_directory(tmp)
            self.report(metrics, checkpoint=checkpoint)
        self.times.skip()

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
            **self.times.metrics(),
            "workers": self.world,  # data-parallel Train workers of this trial
        }
        for key in ("loss", "loss_sup", "loss_unsup", "mask_ratio", "lambda_eff", "lr"):
            if key in train:
                metrics[key] = train[key]
        return metrics


def scores_on_test(record: dict) -> dict:
    """The test split's scores as Tune sees them: ``test_miou`` and ``test_iou/<class>``."""
    return {"test_miou": record["miou"], **{f"test_{k}": v for k, v in record.items() if k.startswith("iou/")}}


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
