"""One optimisation step: supervised, or UDA. Plain functions, no Ray, no loop state.

The UDA step, top to bottom:
1. teacher predicts on the weak view (no gradient; its pass leaves BatchNorm's running
   statistics alone), sharpened by T;
2. the strong view's geometry (affine warp, CutMix box) is applied to the student's input
   and to the teacher's probabilities alike, with a validity mask for pixels moved out of
   frame;
3. pixels whose teacher confidence is below τ (per class, if adaptive) are masked out;
   with ``uda.paste``, a labeled frame's rare-class objects are pasted on top, their labels
   as targets (train/paste.py);
4. loss = supervised CE on labeled pixels + λ · ramp(t) · consistency(student, teacher), the
   consistency averaged over the strong view's in-frame pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from udatune.augment.warp import apply_strong_geometry
from udatune.config import UDAConfig
from udatune.data.loader import normalize
from udatune.train.losses import class_balance_weights, consistency_loss, rampup_weight, supervised_loss, teacher_targets
from udatune.train.paste import LabeledPaste
from udatune.data.base import IGNORE_INDEX
from udatune.train.teacher import ClassThresholds, DistributionAlignment, EMATeacher, per_class_mask_ratio, teacher_pass


class TrialDiverged(RuntimeError):
    """The loss became NaN or infinite; the trial cannot go on."""


@dataclass
class StepContext:
    """What a step needs besides the batches: built once per run by the loop."""

    model: nn.Module  # what the step runs: the model, or its DDP wrapper
    model_without_ddp: nn.Module  # the model itself: what checkpoints hold (no ``module.`` keys)
    optimizer: torch.optim.Optimizer
    uda: UDAConfig
    num_classes: int
    device: torch.device
    total_steps: int
    autocast: Callable[[], object]
    scaler: torch.amp.GradScaler | None
    ema: EMATeacher | None = None  # None: the model is its own teacher
    thresholds: ClassThresholds | None = None
    uses_geometry: bool = False
    alignment: DistributionAlignment | None = None
    paste: LabeledPaste | None = None


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Copy a batch (asynchronously from pinned memory); label maps travel as uint8 and become
    the int64 that the losses index with only here, on the device."""
    moved = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    if "mask" in moved:
        moved["mask"] = moved["mask"].long()
    return moved


Metrics = dict[str, torch.Tensor]


def supervised_step(ctx: StepContext, labeled: dict[str, torch.Tensor], step: int, detailed: bool = False) -> Metrics:
    """Returns detached 0-d tensors: converting them to floats would force a device sync
    every step, so the loop does that only when it logs."""
    images, masks = normalize(labeled["image"]), labeled["mask"]
    with ctx.autocast():
        logits = ctx.model(images)
    loss, kept = supervised_loss(logits, masks, ctx.uda.tsa, step / ctx.total_steps)
    _backward(ctx, loss)
    return {"loss": loss.detach(), "loss_sup": loss.detach(), "tsa_kept": kept}


def uda_step(
    ctx: StepContext,
    labeled: dict[str, torch.Tensor],
    unlabeled: dict[str, torch.Tensor],
    step: int,
    detailed: bool = False,
) -> Metrics:
    uda = ctx.uda
    weak, strong = normalize(unlabeled["weak"]), normalize(unlabeled["strong"])
    teacher = ctx.ema.model if ctx.ema is not None else ctx.model
    with ctx.autocast():
        teacher_logits = teacher_pass(teacher, weak)
    log_ratio = None
    if ctx.alignment is not None:
        ctx.alignment.observe(labeled["mask"], torch.softmax(teacher_logits.float(), dim=1), IGNORE_INDEX)
        log_ratio = ctx.alignment.log_ratio(teacher_logits.device)
    target = teacher_targets(teacher_logits, uda.temperature, log_ratio)
    keep = ctx.thresholds.keep_mask(target.confidence, target.labels)
    if ctx.uses_geometry:
        # Carry the per-pixel keep mask and hard labels through the same warp as the
        # probabilities, so every pixel of the student lines up with its own target.
        stacked = torch.cat([target.probs, keep[:, None]], dim=1)
        strong, stacked, valid = apply_strong_geometry(strong, stacked, unlabeled["affine"], unlabeled["box"])
        probs, keep = stacked[:, :-1], stacked[:, -1] * valid
        keep = (keep > 0.5).float()
    else:
        probs, valid = target.probs, None
    labeled_images = normalize(labeled["image"])
    if ctx.paste is not None:
        strong, probs, keep, valid = ctx.paste(strong, probs, keep, valid, labeled_images, labeled["mask"], step)
    ctx.thresholds.observe(target.confidence, target.labels)
    weights = class_balance_weights(probs.argmax(dim=1), keep, ctx.num_classes) if uda.class_balance else keep

    n_labeled = labeled["image"].shape[0]
    with ctx.autocast():
        # One forward over labeled + strong views: BatchNorm sees both, as in FixMatch.
        logits = ctx.model(torch.cat([labeled_images, strong]))
    sup, kept = supervised_loss(logits[:n_labeled], labeled["mask"], uda.tsa, step / ctx.total_steps)
    unsup = consistency_loss(logits[n_labeled:], probs, weights, uda.loss, valid)
    weight = uda.lambda_u * rampup_weight(step, uda.rampup_steps)
    loss = sup + weight * unsup
    _backward(ctx, loss)
    if ctx.ema is not None:
        ctx.ema.update(ctx.model)
    metrics = {
        "loss": loss.detach(),
        "loss_sup": sup.detach(),
        "loss_unsup": unsup.detach(),
        "lambda_eff": torch.tensor(weight),
        "mask_ratio": keep.mean() if valid is None else keep.sum() / valid.sum().clamp_min(1),
        "tsa_kept": kept,
    }
    if detailed:
        ratios = per_class_mask_ratio(keep, probs.argmax(dim=1), ctx.num_classes)
        metrics.update({f"mask_ratio/{c}": r for c, r in enumerate(ratios)})
    return metrics


def _backward(ctx: StepContext, loss: torch.Tensor) -> None:
    ctx.optimizer.zero_grad(set_to_none=True)
    if ctx.scaler is not None:
        ctx.scaler.scale(loss).backward()
        ctx.scaler.step(ctx.optimizer)
        ctx.scaler.update()
    else:
        loss.backward()
        ctx.optimizer.step()
