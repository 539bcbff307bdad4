"""A picture of a policy at work: original | strong view | strong view + warped labels.

The third column overlays the label map warped with the very matrix that warped the image
(nearest, ignore outside the frame), so a person can see at a glance that masks stay aligned.
"""

from __future__ import annotations

import numpy as np
import torch

from udatune.augment.warp import warp_labels
from udatune.data.base import IGNORE_INDEX, FrameSource


def palette(num: int = 256) -> np.ndarray:
    """Distinct, stable colours per class id; ignore is black."""
    rng = np.random.default_rng(7)
    colours = rng.integers(40, 256, size=(num, 3), dtype=np.uint8)
    colours[IGNORE_INDEX] = 0
    return colours


def render_grid(frames: FrameSource, policy, count: int, seed: int) -> np.ndarray:
    rows = []
    colours = palette()
    rng = np.random.default_rng(seed)
    for index in range(min(count, len(frames))):
        image, mask = frames.load(index)
        view = policy.apply(image, rng)
        strong = torch.from_numpy(view.image).permute(2, 0, 1)[None].float()
        labels = torch.from_numpy(mask.astype(np.int64))[None]
        affine = torch.from_numpy(np.asarray(view.affine, dtype=np.float32))[None]
        warped_image, warped_labels = warp_labels(strong, labels, affine, IGNORE_INDEX)
        warped = warped_image[0].permute(1, 2, 0).clamp(0, 255).byte().numpy()
        overlay = (0.5 * warped + 0.5 * colours[warped_labels[0].numpy()]).astype(np.uint8)
        rows.append(np.concatenate([image, warped, overlay], axis=1))
    return np.concatenate(rows, axis=0)
