"""The UDA step as a whole: what reaches the loss, and what the teacher's pass may not touch."""

import contextlib

import pytest
import torch
from torch import nn

from udatune.config import UDAConfig
from udatune.train.paste import LabeledPaste
from udatune.train.step import StepContext, uda_step
from udatune.train.teacher import ClassThresholds, statistics_frozen

K = 4  # classes
H, W = 8, 12


def _batches(seed: int = 0, weak_offset: int = 0):
    g = torch.Generator().manual_seed(seed)
    labeled = {
        "image": torch.randint(0, 256, (2, 3, H, W), generator=g, dtype=torch.uint8),
        "mask": torch.randint(0, K, (2, H, W), generator=g),
    }
    weak = torch.randint(0, 256 - weak_offset, (2, 3, H, W), generator=g, dtype=torch.uint8) + weak_offset
    unlabeled = {
        "weak": weak.to(torch.uint8),
        "strong": torch.randint(0, 256, (2, 3, H, W), generator=g, dtype=torch.uint8),
        "affine": torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).repeat(2, 1, 1),
        "box": torch.zeros(2, 4),
    }
    return labeled, unlabeled


def _context(model: nn.Module, uses_geometry: bool, **uda) -> StepContext:
    cfg = UDAConfig(rampup_steps=0, **uda)
    return StepContext(
        model=model, model_without_ddp=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.0),
        uda=cfg, num_classes=K, device=torch.device("cpu"), total_steps=10,
        autocast=contextlib.nullcontext, scaler=None,
        thresholds=ClassThresholds(K, cfg.tau, cfg.class_adaptive), uses_geometry=uses_geometry,
        paste=LabeledPaste(K, cfg.paste) if cfg.paste > 0 else None,
    )


def _constant_model() -> nn.Module:
    """Predicts the same logits at every pixel, whatever the input: every pixel that takes part
    in the consistency loss contributes the same amount."""
    model = nn.Conv2d(3, K, 1)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.copy_(torch.tensor([2.0, 0.5, -1.0, 0.0]))
    return model


def test_pixels_moved_out_of_frame_do_not_shrink_the_consistency_loss():
    # Half of the strong view is translated out of frame. The per-pixel loss is the same at
    # every in-frame pixel, so the mean over the valid pixels is unchanged; a mean over all
    # pixels would halve it (a strong translate would act as a smaller λ).
    labeled, unlabeled = _batches()
    still = uda_step(_context(_constant_model(), True, tau=0.0), labeled, unlabeled, step=5)
    moved = dict(unlabeled, affine=torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]).repeat(2, 1, 1))
    shifted = uda_step(_context(_constant_model(), True, tau=0.0), labeled, moved, step=5)
    assert still["loss_unsup"].item() > 0
    assert shifted["loss_unsup"].item() == pytest.approx(still["loss_unsup"].item(), rel=1e-5)
    assert shifted["mask_ratio"].item() == pytest.approx(1.0)  # of the valid pixels, all kept at τ = 0


def test_tau_zero_keeps_every_pixel():
    labeled, unlabeled = _batches(1)
    model = nn.Sequential(nn.Conv2d(3, K, 3, padding=1))
    metrics = uda_step(_context(model, False, tau=0.0), labeled, unlabeled, step=5)
    assert metrics["mask_ratio"].item() == 1.0
    assert torch.isfinite(metrics["loss"]) and metrics["loss_unsup"].item() > 0


def test_pasted_labelled_objects_reach_the_consistency_loss_past_tau():
    # τ = 1: no teacher pixel is confident enough, so only pasted pixels take part. Class 3 is
    # rare in the labelled masks (one 3x3 square a frame); the strong view gets it, kept.
    labeled, unlabeled = _batches(3)
    labeled["mask"] = torch.zeros(2, H, W, dtype=torch.long)
    labeled["mask"][:, 1:4, 1:4] = 3
    plain = uda_step(_context(_constant_model(), True, tau=1.0), labeled, unlabeled, step=5)
    pasted = uda_step(_context(_constant_model(), True, tau=1.0, paste=1.0), labeled, unlabeled, step=5)
    assert plain["mask_ratio"].item() == 0.0 and plain["loss_unsup"].item() == 0.0
    assert pasted["mask_ratio"].item() == pytest.approx(9 / (H * W))
    assert pasted["loss_unsup"].item() > 0


def _bn_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, K, 1))


def test_teacher_pass_leaves_batchnorm_statistics_to_the_student_forward():
    # Weak views far brighter than anything else: had the teacher's pass run in training mode,
    # the running mean would carry them. It must equal what the student's one forward over the
    # labeled and strong views alone produces.
    from udatune.data.loader import normalize

    labeled, unlabeled = _batches(2, weak_offset=200)
    model, reference = _bn_model(), _bn_model()
    uda_step(_context(model, False), labeled, unlabeled, step=5)
    with torch.no_grad():
        reference(torch.cat([normalize(labeled["image"]), normalize(unlabeled["strong"])]))
    bn, ref_bn = model[1], reference[1]
    assert torch.allclose(bn.running_mean, ref_bn.running_mean)
    assert torch.allclose(bn.running_var, ref_bn.running_var)
    assert int(bn.num_batches_tracked) == 1
    assert model.training and bn.training  # the step leaves the student in training mode


def test_frozen_statistics_normalise_with_the_batch_and_are_restored():
    model = _bn_model()
    model.train()
    model[1].eval()  # e.g. a frozen encoder's BatchNorm: it keeps using its running statistics
    other = _bn_model(1).train()
    images = torch.randn(4, 3, H, W) * 5 + 3
    mean_before = other[1].running_mean.clone()
    with torch.no_grad(), statistics_frozen(other):
        inside = other(images)
    assert torch.equal(other[1].running_mean, mean_before) and int(other[1].num_batches_tracked) == 0
    assert other[1].track_running_stats and other.training
    with torch.no_grad():
        # the same numbers as a training-mode pass: the batch's own statistics
        assert torch.allclose(inside, other(images), atol=1e-5)
    with statistics_frozen(model):
        assert not model[1].training and model[1].track_running_stats  # left as it was
    assert model.training and not model[1].training
