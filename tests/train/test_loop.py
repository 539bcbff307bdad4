"""The trial loop end to end on a tiny synthetic dataset, CPU only."""

import json

import pytest
import torch

from udatune.config import TrialConfig
from udatune.data.base import ArrayFrames, SegmentationData
from udatune.data.synthetic import CLASSES, SyntheticSpec, generate
from udatune.train.loop import run_trial


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> SegmentationData:
    spec = SyntheticSpec(height=40, width=56, train=20, val=6, test=6, seed=3)
    splits = generate(spec, cache_dir=tmp_path_factory.mktemp("cache"))
    images, masks = splits["train"]
    return SegmentationData(
        name="tiny",
        classes=CLASSES,
        labeled=ArrayFrames(images[:6], masks[:6]),
        unlabeled=ArrayFrames(images[6:], None),
        val=ArrayFrames(*splits["val"]),
        test=ArrayFrames(*splits["test"]),
    )


def tiny_config(**updates) -> TrialConfig:
    base = {
        "model.width": 4,
        "train.steps": 6,
        "train.eval_every": 3,
        "train.log_every": 2,
        "train.batch_size": 2,
        "train.unlabeled_batch_size": 2,
        "train.num_workers": 0,
        "train.device": "cpu",
        "uda.rampup_steps": 2,
        "uda.tau": 0.0,
    }
    base.update(updates)
    return TrialConfig().override(base)


def _weights(model_state: dict) -> list[torch.Tensor]:
    return [v for v in model_state.values()]


def test_a_run_is_deterministic_under_a_seed(tiny_data, tmp_path):
    records_a, records_b = [], []
    cfg = tiny_config()
    a = run_trial(cfg, tiny_data, hooks=lambda r, save: records_a.append(r) or save(tmp_path / "a"))
    b = run_trial(cfg, tiny_data, hooks=lambda r, save: records_b.append(r) or save(tmp_path / "b"))
    assert records_a == records_b
    assert a.final == b.final
    wa = torch.load(tmp_path / "a" / "trial.pt")["model"]
    wb = torch.load(tmp_path / "b" / "trial.pt")["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    # and a different seed gives a different run
    c = run_trial(tiny_config(**{"train.seed": 1}), tiny_data)
    assert c.history[-1]["miou"] != a.history[-1]["miou"] or c.history != a.history


def test_loader_workers_do_not_change_the_run(tiny_data):
    in_process = run_trial(tiny_config(), tiny_data)
    with_workers = run_trial(tiny_config(**{"train.num_workers": 1}), tiny_data)
    assert in_process.history == with_workers.history


def test_a_run_records_and_can_fix_what_its_numbers_depend_on(tiny_data):
    # The thread count changes the order of float sums (a different run, like another seed):
    # the start record says which was used, and train.threads fixes it.
    before = torch.get_num_threads()
    try:
        records = []
        run_trial(tiny_config(**{"train.threads": 1, "train.steps": 2}), tiny_data, hooks=lambda r, save: records.append(r))
        start = records[0]
        assert start["kind"] == "start" and start["torch_threads"] == 1 and torch.get_num_threads() == 1
        assert start["device"] == "cpu" and start["torch"] == torch.__version__
    finally:
        torch.set_num_threads(before)


def test_records_carry_loss_terms_mask_ratio_and_per_class_iou(tiny_data):
    records = []
    result = run_trial(tiny_config(**{"train.evaluate_test": True}), tiny_data, hooks=lambda r, s: records.append(r))
    # set-up ends with one start record, before any step: timers start from it
    assert {k: records[0][k] for k in ("kind", "step")} == {"kind": "start", "step": 0} and sum(r["kind"] == "start" for r in records) == 1
    train = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval" and r["split"] == "val"]
    assert [r["step"] for r in train] == [2, 4, 6]
    assert [r["step"] for r in evals] == [3, 6]
    for r in train:
        assert {"loss", "loss_sup", "loss_unsup", "mask_ratio", "lambda_eff"} <= set(r)
        assert 0.0 <= r["mask_ratio"] <= 1.0
        assert any(k.startswith("mask_ratio/") for k in r)
    assert all(f"iou/{c}" in evals[-1] for c in CLASSES)
    assert result.test is not None and result.test["split"] == "test"
    json.dumps(records)  # everything is JSON-serialisable for metrics.jsonl


def test_supervised_mode_never_touches_unlabeled_data(tiny_data):
    empty = SegmentationData("tiny", CLASSES, tiny_data.labeled, ArrayFrames(tiny_data.unlabeled.images[:0]), tiny_data.val)
    result = run_trial(tiny_config(**{"uda.mode": "supervised"}), empty)
    assert result.steps == 6
    assert "loss_unsup" not in result.history[-1]


# Every option with state of its own (mean teacher, class thresholds, distribution alignment,
# the labelled paste's class shares) must be in the checkpoint, or a resumed run drifts from
# the straight one.
STATEFUL = {"uda.ema_decay": 0.9, "uda.class_adaptive": True, "uda.align": True, "uda.tau": 0.3, "uda.paste": 0.5}


@pytest.mark.parametrize("options", [{}, STATEFUL], ids=["plain", "stateful-teacher"])
def test_resuming_from_a_checkpoint_continues_exactly(tiny_data, tmp_path, options):
    options = {"train.log_every": 1, **options}  # one step per log record: losses compare step by step
    straight_logs: list[dict] = []
    straight = run_trial(tiny_config(**options), tiny_data, hooks=lambda r, s: straight_logs.append(r))
    checkpoints = []

    def stop_after_first_eval(record, save):
        if record["kind"] == "eval":
            save(tmp_path / "ckpt")
            checkpoints.append(record["step"])
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_trial(tiny_config(**options), tiny_data, hooks=stop_after_first_eval)
    assert checkpoints == [3]
    resumed_logs: list[dict] = []
    resumed = run_trial(tiny_config(**options), tiny_data, resume=tmp_path / "ckpt", hooks=lambda r, s: resumed_logs.append(r))
    assert {k: resumed_logs[0][k] for k in ("kind", "step")} == {"kind": "start", "step": 3}  # a resumed run starts at its checkpoint's step
    assert resumed.history == straight.history  # same evals at steps 3 and 6, same scores
    # ... and the same loss terms at every step after the checkpoint, to the last bit.
    def losses(logs):
        return [(r["step"], r.get("loss"), r.get("loss_unsup")) for r in logs if r["kind"] == "train" and r["step"] > 3]

    assert losses(resumed_logs) and losses(resumed_logs) == losses(straight_logs)
