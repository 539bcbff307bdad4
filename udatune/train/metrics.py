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
    """Rows are ground truth, columns are predictions.

    The counts stay on the device of the batches (copying every valid pixel to the host to
    count it there stalled the GPU at every batch); `compute` reads the matrix back once.
    """

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, target: torch.Tensor, prediction: torch.Tensor) -> None:
        n = self.num_classes
        self.matrix = self.matrix.to(target.device)
        # Ignored pixels go to one extra bin past the matrix, so no pixel is selected (a boolean
        # selection has a data-dependent size, which the host must wait for).
        cell = torch.where(target != self.ignore_index, target.to(torch.int64) * n + prediction.to(torch.int64), n * n)
        counts = torch.zeros(n * n + 1, dtype=torch.int64, device=cell.device)
        counts.scatter_add_(0, cell.flatten(), torch.ones_like(cell.flatten()))
        self.matrix += counts[: n * n].view(n, n)

    def reduce_from_all_processes(self) -> None:
        """Sum the matrices of all data-parallel ranks (each evaluated its shard of the split)."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(self.matrix)

    def compute(self) -> SegmentationScores:
        return scores_from_confusion(self.matrix.cpu().numpy())


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
