"""The trainer's encoder knobs on an smp model: a separate learning rate and a frozen start."""

from __future__ import annotations

import pytest
import torch

from udatune.config import TrialConfig
from udatune.data.base import ArrayFrames, SegmentationData
from udatune.data.synthetic import CLASSES, SyntheticSpec, generate
from udatune.errors import ConfigError
from udatune.train.loop import run_trial, setup_trial
from udatune.train.step import supervised_step, to_device


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> SegmentationData:
    spec = SyntheticSpec(height=32, width=48, train=12, val=4, test=4, seed=3)
    splits = generate(spec, cache_dir=tmp_path_factory.mktemp("cache"))
    images, masks = splits["train"]
    return SegmentationData(
        name="tiny", classes=CLASSES, labeled=ArrayFrames(images[:6], masks[:6]),
        unlabeled=ArrayFrames(images[6:], None), val=ArrayFrames(*splits["val"]), test=ArrayFrames(*splits["test"]),
    )


def config(**updates) -> TrialConfig:
    base = {
        "model.name": "fpn", "model.encoder": "tu-mobilenetv3_small_050", "model.encoder_weights": "none",
        "train.steps": 2, "train.eval_every": 2, "train.log_every": 1, "train.batch_size": 2,
        "train.unlabeled_batch_size": 2, "train.num_workers": 0, "train.device": "cpu", "uda.mode": "supervised",
    }
    return TrialConfig().override({**base, **updates})


def test_the_encoder_gets_lr_times_the_multiplier(tiny_data):
    setup = setup_trial(config(**{"train.encoder_lr_mult": 0.1, "train.lr": 1e-3}), tiny_data)
    decoder_group, encoder_group = setup.ctx.optimizer.param_groups
    assert decoder_group["lr"] == pytest.approx(1e-3) and encoder_group["lr"] == pytest.approx(1e-4)
    encoder_ids = {id(p) for p in setup.ctx.model.encoder.parameters()}
    assert {id(p) for p in encoder_group["params"]} == encoder_ids
    assert not encoder_ids & {id(p) for p in decoder_group["params"]}


def _encoder_state(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.encoder.state_dict().items() if v.is_floating_point()}


def test_a_frozen_encoder_keeps_weights_and_batchnorm_statistics(tiny_data):
    setup = setup_trial(config(**{"train.freeze_encoder_steps": 2}), tiny_data)
    from udatune.models.registry import set_encoder_frozen

    model, ctx = setup.ctx.model, setup.ctx
    set_encoder_frozen(model, True)
    model.train()
    before = _encoder_state(model)
    decoder_before = [p.clone() for n, p in model.named_parameters() if "decoder" in n]
    batch = to_device({"image": torch.from_numpy(tiny_data.labeled.images[:2]).permute(0, 3, 1, 2).contiguous(),
                       "mask": torch.from_numpy(tiny_data.labeled.masks[:2]).long()}, setup.device)
    for step in range(2):
        supervised_step(ctx, batch, step)
        setup.scheduler.step()
    after = _encoder_state(model)
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and running stats alike
    assert any(not torch.equal(a, p) for a, p in zip(decoder_before, (p for n, p in model.named_parameters() if "decoder" in n)))

    set_encoder_frozen(model, False)  # what the loop does at freeze_encoder_steps
    supervised_step(ctx, batch, 2)
    moved = _encoder_state(model)
    assert any(not torch.equal(before[k], moved[k]) for k in before)


def test_a_whole_trial_with_a_frozen_start_runs(tiny_data):
    result = run_trial(config(**{"train.freeze_encoder_steps": 1, "train.encoder_lr_mult": 0.5, "uda.mode": "uda"}), tiny_data)
    assert result.steps == 2 and 0.0 <= result.final["miou"] <= 1.0


def test_encoder_knobs_on_a_model_without_encoder_are_refused(tiny_data):
    with pytest.raises(ConfigError, match="has none"):
        setup_trial(config(**{"model.name": "unet", "model.width": 4, "train.encoder_lr_mult": 0.1}), tiny_data)
