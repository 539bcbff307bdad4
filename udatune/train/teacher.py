"""Where the teacher's targets come from, and how strict it is per class.

* `EMATeacher`: a mean teacher (Tarvainen & Valpola), an exponential moving average of the
  student's weights; steadier targets than the student itself, off by default.
* `ClassThresholds`: FlexMatch-style class-adaptive confidence thresholds, adapted to pixels.
  A naive UDA run lifts the large classes but starves thin ones (pole, fence, pedestrian):
  their pixels rarely pass a global τ, so they get no consistency signal and collapse. Each
  class's threshold is scaled by how well that class is being learned — the share of pixels
  predicted as that class that are confident, relative to the best-learned class — so a
  class the model is still unsure of is held to a lower bar: τ_c = τ · β_c / (2 − β_c).
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMATeacher:
    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
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

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = state["updates"]


class ClassThresholds:
    def __init__(self, num_classes: int, tau: float, adaptive: bool, momentum: float = 0.99) -> None:
        self.tau, self.adaptive, self.momentum = tau, adaptive, momentum
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
        predicted = torch.bincount(flat, minlength=k).float()
        passed = torch.bincount(flat, weights=confident, minlength=k)
        share = torch.where(predicted > 0, passed / predicted.clamp_min(1), self.confident_share)
        self.confident_share = self.momentum * self.confident_share + (1 - self.momentum) * share

    def state_dict(self) -> dict:
        return {"confident_share": self.confident_share.detach().cpu().clone()}

    def load_state_dict(self, state: dict) -> None:
        self.confident_share = state["confident_share"].clone()


def per_class_mask_ratio(keep: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """For each class, the share of pixels the teacher assigns to it that pass the threshold.

    NaN for classes the teacher did not predict in this batch. Logged so that a thin class
    collapsing (ratio near 0 while the global mask ratio looks healthy) is visible.
    """
    flat = labels.flatten()
    predicted = torch.bincount(flat, minlength=num_classes).float()
    passed = torch.bincount(flat, weights=keep.flatten().float(), minlength=num_classes)
    return torch.where(predicted > 0, passed / predicted.clamp_min(1), torch.full_like(predicted, float("nan")))
