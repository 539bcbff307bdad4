"""The two UDA loss terms, each readable in one screen.

* `supervised_loss`: pixel cross-entropy on labeled frames, optionally with training signal
  annealing (TSA, Xie et al. 2019): pixels the model already predicts with probability above
  a threshold η(t) are dropped, η rising from 1/K to 1 over training, so a model with only a
  few labels cannot overfit them early.
* `consistency_loss`: the teacher's prediction on the weak view, sharpened by T and masked
  where its confidence is below τ, is the target for the student's prediction on the strong
  view; KL divergence (soft targets) or cross-entropy on hard pseudo-labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from udatune.data.base import IGNORE_INDEX

TSA_SCHEDULES = {
    "linear": lambda p: p,
    "log": lambda p: 1.0 - math.exp(-p * 5.0),
    "exp": lambda p: math.exp((p - 1.0) * 5.0),
}


def tsa_threshold(schedule: str, progress: float, num_classes: int) -> float:
    """η(t) = α(t)·(1 − 1/K) + 1/K, with α from the UDA paper's linear/log/exp schedules."""
    alpha = TSA_SCHEDULES[schedule](min(max(progress, 0.0), 1.0))
    return alpha * (1.0 - 1.0 / num_classes) + 1.0 / num_classes


def supervised_loss(
    logits: torch.Tensor, mask: torch.Tensor, tsa: str = "none", progress: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean pixel cross-entropy over labeled pixels; returns (loss, share of pixels kept)."""
    per_pixel = F.cross_entropy(logits.float(), mask, ignore_index=IGNORE_INDEX, reduction="none")
    keep = mask != IGNORE_INDEX
    if tsa != "none":
        eta = tsa_threshold(tsa, progress, logits.shape[1])
        correct_prob = torch.exp(-per_pixel.detach())  # p(true class) for labeled pixels
        keep = keep & (correct_prob <= eta)
    kept = keep.sum()
    loss = (per_pixel * keep).sum() / kept.clamp(min=1)
    labeled_pixels = (mask != IGNORE_INDEX).sum().clamp(min=1)
    return loss, (kept / labeled_pixels).detach()


@dataclass(frozen=True)
class TeacherTargets:
    """What the teacher hands the student: soft targets and which pixels count."""

    probs: torch.Tensor  # B x K x H x W, sharpened by T
    confidence: torch.Tensor  # B x H x W, max un-sharpened probability
    labels: torch.Tensor  # B x H x W, argmax class


def teacher_targets(teacher_logits: torch.Tensor, temperature: float, log_ratio: torch.Tensor | None = None) -> TeacherTargets:
    """``log_ratio`` (K,): distribution alignment, added to the logits so that every derived
    quantity (confidence, labels, sharpened targets) comes from the aligned distribution."""
    logits = teacher_logits.detach().float()
    if log_ratio is not None:
        logits = logits + log_ratio.view(1, -1, 1, 1)
    probs = torch.softmax(logits, dim=1)
    confidence, labels = probs.max(dim=1)
    sharpened = torch.softmax(logits / temperature, dim=1)
    return TeacherTargets(sharpened, confidence, labels)


def consistency_loss(
    student_logits: torch.Tensor,
    target_probs: torch.Tensor,
    keep: torch.Tensor,
    kind: str = "kl",
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-pixel KL(target ‖ student) or CE on argmax(target), averaged over the valid pixels.

    Averaging over every valid pixel (not only the kept ones) is the UDA convention: when few
    pixels pass τ the term shrinks instead of being dominated by a handful of confident pixels.
    ``valid`` (B x H x W) marks the pixels that exist in the strong view — a translate, rotate or
    shear moves part of the frame out, and those pixels have no target at all. They leave the
    denominator too: otherwise a strong geometric policy would shrink the effective λ, and a
    sweep could not tell the policy's effect from λ's. None: every pixel is valid.
    ``target_probs`` carries no gradient; gradients flow only through the student.
    """
    target = target_probs.detach()
    log_student = torch.log_softmax(student_logits.float(), dim=1)
    if kind == "kl":
        per_pixel = (target * (torch.log(target.clamp_min(1e-8)) - log_student)).sum(dim=1)
    elif kind == "ce":
        per_pixel = F.nll_loss(log_student, target.argmax(dim=1), reduction="none")
    else:
        raise ValueError(f"unknown consistency loss {kind!r}; use 'kl' or 'ce'")
    pixels = keep.numel() if valid is None else valid.sum().clamp_min(1)
    return (per_pixel * keep).sum() / pixels


def rampup_weight(step: int, rampup_steps: int) -> float:
    """Sigmoid ramp-up exp(−5(1−t)²) from 0 to 1 (Laine & Aila), so λ starts low while the
    teacher is still poor."""
    if rampup_steps <= 0:
        return 1.0
    t = min(step / rampup_steps, 1.0)
    return math.exp(-5.0 * (1.0 - t) ** 2)


def class_balance_weights(labels: torch.Tensor, keep: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Per-pixel weights ∝ 1/√(share of kept pixels whose teacher class is that pixel's class).

    Consistency on a road scene is dominated by road, building and sky pixels; the gradient
    then pulls thin classes (pole, sign) into their large neighbours and they collapse to 0 IoU
    while mIoU barely moves. Re-weighting gives rare classes a say without letting a handful
    of pixels dominate (the square root keeps it milder than inverse frequency). Weights are
    normalised so their mean over kept pixels is 1: the loss scale, and so λ, keep their meaning.
    """
    flat_labels = labels.flatten()
    flat_keep = keep.flatten()
    counts = class_histogram(flat_labels, num_classes, flat_keep)
    per_class = torch.where(counts > 0, counts.clamp_min(1.0).rsqrt(), torch.zeros_like(counts))
    weights = per_class[flat_labels] * flat_keep
    kept = flat_keep.sum().clamp_min(1.0)
    return (weights * kept / weights.sum().clamp_min(1e-8)).view_as(keep)


def class_histogram(labels: torch.Tensor, num_classes: int, weights: torch.Tensor | None = None) -> torch.Tensor:
    """``torch.bincount(labels, weights, minlength=num_classes)`` for ids in ``0..num_classes-1``,
    without its host sync: on CUDA, bincount reads the largest id back to size its output, which
    stalls the step (several times per UDA step). A scatter into a fixed-size output does not.
    Same dtypes as bincount: int64 counts, or the weights' dtype."""
    flat = labels.flatten()
    values = torch.ones_like(flat) if weights is None else weights.flatten()
    return torch.zeros(num_classes, dtype=values.dtype, device=flat.device).scatter_add_(0, flat, values)
