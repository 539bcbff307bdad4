"""Copy-paste of labelled objects into the strong view, against thin classes collapsing.

With a few labelled frames, the teacher under-predicts the thin classes (pole, sign,
pedestrian, bicyclist); consistency then teaches the student the teacher's bias, and those
classes vanish — on CamVid at 24 labels, most of udatune's teacher options take bicyclist below
half of the supervised baseline's IoU (docs/benchmarks.md). Copy-paste (Ghiasi et al.
2021; for semi-supervised segmentation, Bai et al.'s bidirectional copy-paste, 2023) puts the
pixels of a labelled frame's rare classes on top of a strong view, where the target is the
label itself: the consistency term keeps seeing those classes with correct targets, in the
unlabelled frames' contexts.

A class is rare when its running share of the labelled pixels is below half the uniform share,
1/(2K): the classes that are small objects, read off the data rather than named per dataset.
Each strong view gets a paste with probability ``uda.paste``, from the labelled frame at its
index in the batch (the labelled batch is already shuffled and weakly augmented). Which views
get one is drawn from the run's seed and the step, not from torch's global generator, so a run
resumed from a checkpoint draws what the straight run drew.

Because the pasted pixels are labelled ones, part of what this buys is copy-paste
augmentation of the labelled set, which a supervised run does not get; the benchmarks that
use it say so. Measured on CamVid (3 seeds, on top of CutMix, a mean teacher and alignment), it
kept bicyclist best of any UDA recipe but did not beat alignment alone in mIoU: it is off by
default and in no shipped space.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from udatune.data.base import IGNORE_INDEX
from udatune.train.teacher import Reduce, labeled_counts, running_blend


class LabeledPaste:
    """Running class shares of the labelled pixels, and the paste itself (`__call__`)."""

    def __init__(
        self, num_classes: int, probability: float, seed: int = 0, momentum: float = 0.99, reduce: Reduce | None = None
    ) -> None:
        self.num_classes, self.probability, self.seed = num_classes, probability, seed
        self.momentum, self.reduce = momentum, reduce
        self.share = torch.full((num_classes,), float("nan"))  # NaN: nothing observed yet (in the state)
        self.observed = False  # on the host: asking the tensor would sync every step

    @torch.no_grad()
    def observe(self, masks: torch.Tensor) -> None:
        """``masks``: B x H x W labels of the labelled batch."""
        counts = labeled_counts(masks, self.num_classes, IGNORE_INDEX)
        if self.reduce is not None:  # every rank's pixels
            counts = self.reduce(counts)
        self.share = running_blend(self.share, counts / counts.sum().clamp_min(1.0), self.momentum, self.observed)
        self.observed = True

    def rare(self, device: torch.device) -> torch.Tensor:
        """Which classes are rare (K bools): running share below 1/(2K)."""
        self.share = self.share.to(device)
        return ~(self.share >= 0.5 / self.num_classes)

    @torch.no_grad()
    def __call__(
        self,
        strong: torch.Tensor,
        probs: torch.Tensor,
        keep: torch.Tensor,
        valid: torch.Tensor | None,
        images: torch.Tensor,
        masks: torch.Tensor,
        step: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Paste the rare-class pixels of ``images``/``masks`` (the labelled batch, normalised
        like ``strong``) onto the chosen strong views; their targets become the one-hot labels,
        kept and valid. Returns the new ``(strong, probs, keep, valid)``."""
        self.observe(masks)
        n = strong.shape[0]
        source = torch.arange(n, device=strong.device) % images.shape[0]
        labels = masks[source]
        draw = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        chosen = (torch.rand(n, generator=draw) < self.probability).to(strong.device)
        known = labels != IGNORE_INDEX
        labels = torch.where(known, labels, 0)
        paste = known & self.rare(strong.device)[labels] & chosen[:, None, None]
        strong = torch.where(paste[:, None], images[source].to(strong.dtype), strong)
        onehot = F.one_hot(labels, self.num_classes).permute(0, 3, 1, 2).to(probs.dtype)
        probs = torch.where(paste[:, None], onehot, probs)
        keep = torch.where(paste, torch.ones_like(keep), keep)
        valid = None if valid is None else valid | paste
        return strong, probs, keep, valid

    def state_dict(self) -> dict:
        return {"share": self.share.detach().cpu().clone()}

    def load_state_dict(self, state: dict) -> None:
        self.share = state["share"].clone()
        self.observed = not bool(torch.isnan(self.share).any())
