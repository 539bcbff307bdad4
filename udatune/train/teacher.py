"""Where the teacher's targets come from, and how strict it is per class.

* `EMATeacher`: a mean teacher (Tarvainen & Valpola), an exponential moving average of the
  student's weights; steadier targets than the student itself, off by default.
* `ClassThresholds`: FlexMatch-style class-adaptive confidence thresholds, adapted to pixels.
  A naive UDA run lifts the large classes but starves thin ones (pole, fence, pedestrian):
  their pixels rarely pass a global τ, so they get no consistency signal and collapse. Each
  class's threshold is scaled by how well that class is being learned — the share of pixels
  predicted as that class that are confident, relative to the best-learned class — so a
  class the model is still unsure of is held to a lower bar: τ_c = τ · β_c / (2 − β_c).
* `DistributionAlignment`: ReMixMatch's distribution alignment, per pixel (as in DARS, He et
  al. 2021). A teacher trained on few labels under-predicts thin classes; consistency then
  teaches the student the teacher's bias, the bias grows, and the thin classes vanish. The
  teacher's probabilities are multiplied by (class frequency in the labeled pixels) /
  (running mean of the teacher's own predictions), so the pseudo-labels keep the labeled
  class balance instead of drifting to the large classes.
* `teacher_pass`: the teacher's pass leaves BatchNorm's running statistics alone. When the
  student is its own teacher, a plain training-mode pass over the weak views folded weak-only
  batch statistics into the running statistics — the ones evaluation uses — although no loss
  is computed on those views. The pass still normalises with the weak batch's own statistics,
  as before: an evaluation-mode teacher (running statistics) was measured instead, and on the
  demo's small U-Net its targets drifted until UDA collapsed (docs/benchmarks.md); putting the
  weak views into the student's forward (FixMatch) costs a third more compute per step.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Callable, Iterator

import torch
from torch import nn

from udatune.models.registry import BATCH_NORMS
from udatune.train.losses import class_histogram

# Averages a tensor over the data-parallel ranks (`loop.average_across_ranks`); None: one process.
# With it, every rank holds the same thresholds, alignment and teacher buffers, so the targets do
# not depend on which rank computed them and rank 0's checkpoint is everybody's state.
Reduce = Callable[[torch.Tensor], torch.Tensor]


@contextlib.contextmanager
def statistics_frozen(model: nn.Module) -> Iterator[nn.Module]:
    """BatchNorm layers normalise with the batch's statistics but neither read nor update their
    running ones for the duration (``track_running_stats`` off), then are restored. Layers in
    evaluation mode (a frozen encoder's, the mean teacher's) keep using their running ones."""
    layers = [m for m in model.modules() if isinstance(m, BATCH_NORMS) and m.training and m.track_running_stats]
    for layer in layers:
        layer.track_running_stats = False
    try:
        yield model
    finally:
        for layer in layers:
            layer.track_running_stats = True


@torch.no_grad()
def teacher_pass(teacher: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The teacher's logits on ``images``, with no gradient and no BatchNorm running statistics
    updated (see the module docstring)."""
    with statistics_frozen(teacher):
        return teacher(images)


class EMATeacher:
    def __init__(self, model: nn.Module, decay: float, reduce: Reduce | None = None) -> None:
        self.decay = decay
        self.reduce = reduce
        self.updates = 0
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, student: nn.Module) -> None:
        # Warm-up: early on the average would be dominated by random initial weights (and
        # mismatch the BatchNorm statistics copied from the student), so the effective decay
        # grows as (n + 1) / (n + 10) until it reaches the configured one.
        self.updates += 1
        decay = min(self.decay, (self.updates + 1) / (self.updates + 10))
        for t, s in zip(self.model.parameters(), student.parameters()):
            t.lerp_(s.detach(), 1.0 - decay)
        for t, s in zip(self.model.buffers(), student.buffers()):
            t.copy_(s)
        if self.reduce is not None:
            # Each rank's student updated its BatchNorm statistics on its own batch.
            floats = [b for b in self.model.buffers() if b.is_floating_point()]
            if floats:
                mean = self.reduce(torch.cat([b.flatten() for b in floats]))
                for b, part in zip(floats, mean.split([b.numel() for b in floats])):
                    b.copy_(part.view_as(b))

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = state["updates"]


class ClassThresholds:
    def __init__(
        self, num_classes: int, tau: float, adaptive: bool, momentum: float = 0.99, reduce: Reduce | None = None
    ) -> None:
        self.tau, self.adaptive, self.momentum, self.reduce = tau, adaptive, momentum, reduce
        # Start every class as "well learned": thresholds begin at τ and only fall for classes
        # whose confident share lags behind.
        self.confident_share = torch.ones(num_classes)

    def thresholds(self, device: torch.device) -> torch.Tensor:
        # State follows the device of the tensors it sees, so a step never copies it back
        # and forth (a host round trip would force a CUDA sync every step).
        self.confident_share = self.confident_share.to(device)
        if not self.adaptive:
            return torch.full_like(self.confident_share, self.tau)
        beta = self.confident_share / self.confident_share.max().clamp_min(1e-8)
        return self.tau * beta / (2.0 - beta)

    def keep_mask(self, confidence: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Which teacher pixels pass their class's threshold (B x H x W, float 0/1)."""
        return (confidence >= self.thresholds(confidence.device)[labels]).float()

    @torch.no_grad()
    def observe(self, confidence: torch.Tensor, labels: torch.Tensor) -> None:
        if not self.adaptive:
            return
        k = self.confident_share.numel()
        self.confident_share = self.confident_share.to(labels.device)
        flat = labels.flatten()
        confident = (confidence.flatten() >= self.tau).float()
        predicted = class_histogram(flat, k).float()
        passed = class_histogram(flat, k, confident)
        if self.reduce is not None:  # the share over all ranks' pixels
            predicted, passed = self.reduce(torch.stack([predicted, passed]))
        share = torch.where(predicted > 0, passed / predicted.clamp_min(1), self.confident_share)
        self.confident_share = self.momentum * self.confident_share + (1 - self.momentum) * share

    def state_dict(self) -> dict:
        return {"confident_share": self.confident_share.detach().cpu().clone()}

    def load_state_dict(self, state: dict) -> None:
        self.confident_share = state["confident_share"].clone()


class DistributionAlignment:
    """Running class frequencies of labeled pixels and of the teacher's predictions; `log_ratio`
    is what the teacher's logits are shifted by (softmax(z + log r) ∝ p · r)."""

    def __init__(self, num_classes: int, momentum: float = 0.99, reduce: Reduce | None = None) -> None:
        self.momentum, self.reduce = momentum, reduce
        self.labeled = torch.full((num_classes,), float("nan"))  # NaN: not observed yet (in the state)
        self.predicted = torch.full((num_classes,), float("nan"))
        # Kept on the host: asking the (device) tensors whether they hold NaN would sync every step.
        self.observed = False

    @torch.no_grad()
    def observe(self, masks: torch.Tensor, teacher_probs: torch.Tensor, ignore_index: int) -> None:
        """``masks``: B x H x W labels of the labeled batch; ``teacher_probs``: B x K x H x W,
        the teacher's un-sharpened, un-aligned probabilities on the unlabeled batch."""
        labeled = labeled_counts(masks, teacher_probs.shape[1], ignore_index)
        predicted = teacher_probs.float().mean(dim=(0, 2, 3))
        if self.reduce is not None:  # all ranks' pixels (equal batches: the mean of means)
            labeled, predicted = self.reduce(torch.stack([labeled, predicted]))
        labeled = labeled / labeled.sum().clamp_min(1.0)
        self.labeled = running_blend(self.labeled, labeled, self.momentum, self.observed)
        self.predicted = running_blend(self.predicted, predicted, self.momentum, self.observed)
        self.observed = True

    def log_ratio(self, device: torch.device) -> torch.Tensor | None:
        """log(labeled / predicted) per class, or None before anything was observed. A small
        floor keeps a class absent from both from producing inf − inf."""
        if not self.observed:
            return None
        eps = 1e-4
        return (torch.log(self.labeled.to(device) + eps) - torch.log(self.predicted.to(device) + eps))

    def state_dict(self) -> dict:
        return {"labeled": self.labeled.detach().cpu().clone(), "predicted": self.predicted.detach().cpu().clone()}

    def load_state_dict(self, state: dict) -> None:
        self.labeled, self.predicted = state["labeled"].clone(), state["predicted"].clone()
        self.observed = not bool(torch.isnan(self.predicted).any())


def labeled_counts(masks: torch.Tensor, num_classes: int, ignore_index: int) -> torch.Tensor:
    """Pixels per class in a batch of label maps (float, K), ignored pixels left out."""
    valid = masks != ignore_index
    return class_histogram(torch.where(valid, masks, 0), num_classes, valid.long()).float()


def running_blend(running: torch.Tensor, batch: torch.Tensor, momentum: float, observed: bool) -> torch.Tensor:
    """An exponential moving average whose first batch sets the start (not a blend with a guess);
    ``running`` follows ``batch``'s device."""
    if not observed:
        return batch.clone()
    return momentum * running.to(batch.device) + (1.0 - momentum) * batch


def per_class_mask_ratio(keep: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """For each class, the share of pixels the teacher assigns to it that pass the threshold.

    NaN for classes the teacher did not predict in this batch. Logged so that a thin class
    collapsing (ratio near 0 while the global mask ratio looks healthy) is visible.
    """
    flat = labels.flatten()
    predicted = class_histogram(flat, num_classes).float()
    passed = class_histogram(flat, num_classes, keep.flatten().float())
    return torch.where(predicted > 0, passed / predicted.clamp_min(1), torch.full_like(predicted, float("nan")))
