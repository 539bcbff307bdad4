"""Segmentation metrics from one accumulated confusion matrix.

A plain accumulator in the spirit of torchvision's references: `update` adds a batch,
`compute` turns the matrix into mIoU, per-class IoU and pixel accuracy. Ignored pixels
never enter the matrix; a class absent from both prediction and ground truth has an
undefined IoU (NaN) and is left out of the mean rather than counted as 0 or 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from udatune.data.base import IGNORE_INDEX


@dataclass(frozen=True)
class SegmentationScores:
    miou: float
    pixel_accuracy: float
    per_class_iou: tuple[float, ...]  # NaN where a class never occurs in target nor prediction

    def as_dict(self, classes: tuple[str, ...] | None = None) -> dict[str, float]:
        names = classes or tuple(str(i) for i in range(len(self.per_class_iou)))
        out = {"miou": self.miou, "pixel_accuracy": self.pixel_accuracy}
        out.update({f"iou/{n}": v for n, v in zip(names, self.per_class_iou)})
        return out


class ConfusionMatrix:
    """Rows are ground truth, columns are predictions."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, target: torch.Tensor, prediction: torch.Tensor) -> None:
        keep = target != self.ignore_index
        t = target[keep].to(torch.int64).cpu()
        p = prediction[keep].to(torch.int64).cpu()
        n = self.num_classes
        self.matrix += torch.bincount(t * n + p, minlength=n * n).reshape(n, n)

    def compute(self) -> SegmentationScores:
        return scores_from_confusion(self.matrix.numpy())


def scores_from_confusion(matrix: np.ndarray) -> SegmentationScores:
    m = matrix.astype(np.float64)
    tp = np.diag(m)
    union = m.sum(0) + m.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
    total = m.sum()
    accuracy = float(tp.sum() / total) if total > 0 else float("nan")
    miou = float(np.nanmean(iou)) if np.any(union > 0) else float("nan")
    return SegmentationScores(miou, accuracy, tuple(float(v) for v in iou))
