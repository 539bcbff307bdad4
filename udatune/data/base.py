"""The shapes data takes between a dataset on disk and the trainer.

A dataset is resolved into a `SegmentationData`: the class names and four splits, each a
`FrameSource` that hands out `(image, mask)` pairs as numpy arrays:

* image: uint8, H x W x 3, RGB
* mask:  uint8, H x W, class ids in ``0..num_classes-1`` or ``IGNORE_INDEX``; ``None`` for
  unlabeled frames.

Keeping frames as plain uint8 arrays until the last moment keeps loader workers cheap
(photometric ops run on uint8) and host-to-device copies small.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

IGNORE_INDEX = 255


class FrameSource(Protocol):
    """A split: a fixed, indexable sequence of frames."""

    def __len__(self) -> int: ...

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Return ``(image uint8 HxWx3, mask uint8 HxW or None)``."""
        ...


@dataclass(frozen=True, eq=False)
class ArrayFrames:
    """Frames held in memory (the synthetic dataset, or files preloaded once)."""

    images: np.ndarray  # N x H x W x 3 uint8
    masks: np.ndarray | None = None  # N x H x W uint8

    def __len__(self) -> int:
        return len(self.images)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        mask = None if self.masks is None else self.masks[index]
        return self.images[index], mask

    def subset(self, indices: Sequence[int], with_masks: bool = True) -> "ArrayFrames":
        idx = np.asarray(indices, dtype=np.int64)
        masks = self.masks[idx] if (with_masks and self.masks is not None) else None
        return ArrayFrames(self.images[idx], masks)


@dataclass(frozen=True)
class SegmentationData:
    """A resolved dataset: class names and the four splits the trainer uses.

    ``labeled`` and ``unlabeled`` come from the train split (or an extra unlabeled
    folder); ``test`` may be empty when the dataset has no labeled test split.
    """

    name: str
    classes: tuple[str, ...]
    labeled: FrameSource
    unlabeled: FrameSource
    val: FrameSource
    test: FrameSource | None = None
    # Anything that identifies the data (paths + sizes, or generator parameters): used to
    # fingerprint sweeps so a resumed sweep can tell that its data changed.
    identity: dict = field(default_factory=dict)

    @property
    def has_test(self) -> bool:
        """Whether a labelled test split is there to score on (CamVid's SegNet copy may have none:
        confirmation then scores its fresh seeds on val)."""
        return self.test is not None and len(self.test) > 0

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def fingerprint(self) -> str:
        text = repr(sorted((k, repr(v)) for k, v in self.identity.items()))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def labeled_count(total: int, labeled: int | float | str) -> int:
    """How many of ``total`` train frames are labeled.

    ``labeled`` is a count (an integer >= 1), a fraction in (0, 1), or ``"all"`` (the oracle).
    """
    from udatune.errors import ConfigError

    if labeled == "all":
        return total
    try:
        value = float(labeled)
    except (TypeError, ValueError):
        value = -1.0
    if value <= 0 or (value >= 1 and not value.is_integer()):
        raise ConfigError(
            f"--labeled must be a count (16), a fraction in (0, 1) (0.0625) or 'all'; got {labeled!r}."
        )
    count = int(value) if value >= 1 else max(1, int(round(value * total)))
    if count > total:
        raise ConfigError(
            f"--labeled asks for {count} labeled frames but the train split has only {total}; "
            "pass a smaller count, a fraction such as 0.25, or 'all'."
        )
    return count


def select_labeled(total: int, labeled: int | float | str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(total)`` into sorted (labeled, unlabeled) indices.

    The draw depends only on ``(total, labeled, seed)``, so every trial that names the same
    split seed trains on identical labels: baselines and UDA trials are paired.
    """
    count = labeled_count(total, labeled)
    order = np.random.default_rng(seed).permutation(total)
    return np.sort(order[:count]), np.sort(order[count:])


def as_path(root: str | Path | None, option: str = "--data-root") -> Path:
    from udatune.errors import DataError

    if root is None:
        raise DataError(f"This dataset needs {option}: pass the folder that holds it.")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DataError(f"{option} {path} does not exist or is not a folder; pass the folder that holds the dataset.")
    return path
