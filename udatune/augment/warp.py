"""Replaying a strong view's geometry on the device, batched: student, teacher and labels alike.

UDA compares the student's prediction on the strong view with the teacher's prediction on the
weak view pixel by pixel. Once the strong view has been moved (rotated, sheared, translated,
CutMixed), the teacher's map must be moved *identically*, and pixels the move pads in from
outside the frame carry no teacher signal, so they leave the loss. This module does both with
one `affine_grid` per batch and one `grid_sample` per tensor.

Sampling inside the frame uses ``padding_mode="border"``: in the half-pixel rim between the
outermost pixel centres and the frame edge, bilinear sampling would otherwise blend in zeros and
break ``warp(f(x)) == f(warp(x))``. Everything outside the frame is then set to zero (images and
probabilities) or ``ignore_index`` (labels) through the validity mask.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# Sampling locations within this of the frame edge count as inside: float error of
# affine_grid, not geometry (a pixel is 2/W wide in normalised units).
FRAME_TOLERANCE = 1e-5


def sampling_grid(affine: Tensor, height: int, width: int) -> Tensor:
    """B x H x W x 2 input locations (x, y) of each output pixel, float32, align_corners=False."""
    theta = affine.to(torch.float32)
    return F.affine_grid(theta, [theta.shape[0], 1, height, width], align_corners=False)


def in_frame(grid: Tensor) -> Tensor:
    """B x H x W bool: True where the sampling location lies inside the input frame."""
    return (grid.abs() <= 1.0 + FRAME_TOLERANCE).all(dim=-1)


def box_mask(box: Tensor, height: int, width: int) -> Tensor:
    """B x 1 x H x W bool: pixels whose centres fall in ``box`` (y0, x0, y1, x1) in [0, 1].

    An all-zero box is empty, so rows without CutMix need no special case.
    """
    box = box.to(torch.float32)
    ys = (torch.arange(height, device=box.device, dtype=torch.float32) + 0.5) / height
    xs = (torch.arange(width, device=box.device, dtype=torch.float32) + 0.5) / width
    y0, x0, y1, x1 = (box[:, i, None] for i in range(4))
    rows = (ys >= y0) & (ys < y1)  # B x H
    cols = (xs >= x0) & (xs < x1)  # B x W
    return (rows[:, :, None] & cols[:, None, :])[:, None]


def cutmix(strong: Tensor, target: Tensor, box: Tensor) -> tuple[Tensor, Tensor]:
    """Paste the partner's box region into both the strong view and the teacher target.

    The partner of row ``i`` is row ``(i + 1) % B`` (the batch rolled by one), taken before
    mixing; with B == 1 a row is its own partner and nothing changes. The same box selects the
    image pixels and the target pixels, so the pasted teacher prediction stays aligned.
    """
    inside = box_mask(box, strong.shape[-2], strong.shape[-1])
    mixed_strong = torch.where(inside, strong.roll(-1, dims=0), strong)
    mixed_target = torch.where(inside, target.roll(-1, dims=0), target)
    return mixed_strong, mixed_target


def _sample(x: Tensor, grid: Tensor, valid: Tensor, mode: str) -> Tensor:
    out = F.grid_sample(x, grid.to(x.dtype), mode=mode, padding_mode="border", align_corners=False)
    return out * valid[:, None].to(out.dtype)


def apply_strong_geometry(strong: Tensor, target: Tensor, affine: Tensor, box: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """CutMix, then warp the student's input and the teacher's map with the same matrix.

    strong: B x 3 x H x W float (normalised student input); target: B x C x H x W float (teacher
    probabilities or any per-pixel map); affine: B x 2 x 3 (`StrongView.affine`); box: B x 4.
    Returns ``(strong_warped, target_warped, valid)``; ``valid`` (B x H x W bool) is exactly the
    in-frame region, and both warped tensors are zero outside it.
    """
    strong, target = cutmix(strong, target, box.to(strong.device))
    grid = sampling_grid(affine.to(strong.device), strong.shape[-2], strong.shape[-1])
    valid = in_frame(grid)
    return _sample(strong, grid, valid, "bilinear"), _sample(target, grid, valid, "bilinear"), valid


def warp_labels(image: Tensor, mask: Tensor, affine: Tensor, ignore_index: int = 255) -> tuple[Tensor, Tensor]:
    """Warp a labeled batch: image bilinear, label map nearest with ``ignore_index`` out of frame.

    mask: B x H x W integer ids. Nearest sampling only ever copies an existing id, so the result
    holds input ids and ``ignore_index`` only; its dtype is the input's.
    """
    grid = sampling_grid(affine.to(image.device), image.shape[-2], image.shape[-1])
    valid = in_frame(grid)
    ids = F.grid_sample(mask[:, None].to(torch.float32), grid, mode="nearest", padding_mode="border", align_corners=False)
    ids = torch.where(valid, ids[:, 0].round(), torch.full_like(ids[:, 0], float(ignore_index)))
    return _sample(image, grid, valid, "bilinear"), ids.to(mask.dtype)
