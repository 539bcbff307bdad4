"""One sweep trial = one Ray Train job.

`sweep_trial` is the Tune function trainable. It reserves no CPU itself (see `DRIVER_RESOURCES`):
it only resolves the trial's `TrialConfig`, builds a `TorchTrainer` and waits on ``fit()``, while
the training runs in the Train workers that `ScalingConfig` reserves (worker.py: `train_worker`).
Metrics reach Tune through `TuneReportCallback`. A trial the scheduler stops ends itself through
the stop board (stopping.py).

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

from dataclasses import dataclass

from udatune.config import TrialConfig
from udatune.tune import store
from udatune.tune.stopping import stop_board  # noqa: F401  (scheduler.py imports it from here)
from udatune.tune.worker import train_worker

# The trial function only waits on the Train controller: it reserves a little memory (which
# every Ray node has) and no CPU, so all CPUs and GPUs go to Train workers. Reserving even
# 0.01 CPU per trial would keep e.g. two 1-CPU trials from sharing a 2-CPU machine.
DRIVER_RESOURCES = {"cpu": 0, "memory": 256 * 1024**2}


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
