"""Geometric ops as 3x3 matrices in the normalised coordinates `affine_grid` reads.

Why matrices and not warped pixels: the loader worker only *draws* the geometry of the strong
view; the trainer replays the same matrix on the student's input, on the teacher's probability
map and on the label map (see `warp.py`). A matrix is data, so it composes, batches and
travels to the device for free.

Conventions (every function here follows them):

* A matrix maps an OUTPUT location to the INPUT location it samples from, in the normalised
  coordinates of ``torch.nn.functional.affine_grid(..., align_corners=False)``: x runs from -1
  (left edge of the left pixel) to +1 (right edge of the right pixel), y likewise top to bottom.
* Ops are defined in pixel space about the image centre and then conjugated into normalised
  space, so a rotation or shear of a non-square image stays a true rotation or shear of its
  pixels (normalised x and y have different pixel lengths when H != W).
* ``compose(a, b)`` is "a, then b": content is first moved by ``a``, then by ``b``.
"""

from __future__ import annotations

import math

import numpy as np

IDENTITY = np.eye(3)


def from_pixels(linear: np.ndarray, shift: tuple[float, float], height: int, width: int) -> np.ndarray:
    """Normalised matrix of the pixel-space map ``input = linear @ output + shift``.

    Both sides are measured in pixels from the image centre; ``shift`` is (x, y).
    With D = diag(W/2, H/2) the normalised linear part is D^-1 L D and the shift D^-1 t.
    """
    half = np.array([width / 2.0, height / 2.0])
    theta = np.eye(3)
    theta[:2, :2] = np.asarray(linear, dtype=np.float64) * half[None, :] / half[:, None]
    theta[:2, 2] = np.asarray(shift, dtype=np.float64) / half
    return theta


def rotation(degrees: float, height: int, width: int) -> np.ndarray:
    """Rotate the content counter-clockwise (as displayed, y pointing down) by ``degrees``."""
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    # Output->input is the inverse rotation: (dx, dy)_in = (c dx - s dy, s dx + c dy).
    return from_pixels(np.array([[c, -s], [s, c]]), (0.0, 0.0), height, width)


def shear_x(factor: float, height: int, width: int) -> np.ndarray:
    """Horizontal shear about the centre, PIL's convention: ``x_in = x_out + factor * y_out``."""
    return from_pixels(np.array([[1.0, factor], [0.0, 1.0]]), (0.0, 0.0), height, width)


def shear_y(factor: float, height: int, width: int) -> np.ndarray:
    """Vertical shear about the centre: ``y_in = y_out + factor * x_out``."""
    return from_pixels(np.array([[1.0, 0.0], [factor, 1.0]]), (0.0, 0.0), height, width)


def translation(dx: float, dy: float) -> np.ndarray:
    """Move the content right by ``dx`` widths and down by ``dy`` heights.

    Fractions of the frame are already normalised units (a full frame is 2), so no size is needed.
    """
    theta = np.eye(3)
    theta[0, 2] = -2.0 * dx
    theta[1, 2] = -2.0 * dy
    return theta


def compose(*thetas: np.ndarray) -> np.ndarray:
    """One matrix for several ops applied in the given order.

    If op 1 gives ``y1(p) = x(M1 p)`` and op 2 ``y2(p) = y1(M2 p)``, then ``y2(p) = x(M1 M2 p)``:
    output->input matrices multiply in application order.
    """
    out = np.eye(3)
    for theta in thetas:
        out = out @ theta
    return out


def as_theta(matrix: np.ndarray) -> np.ndarray:
    """The float32 (2, 3) ``theta`` that `affine_grid` takes."""
    return np.ascontiguousarray(matrix[:2, :3], dtype=np.float32)
