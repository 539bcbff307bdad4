"""The op registry: every strong-augmentation op, what it changes, and how magnitude sets it.

An op is data (`Op`), not a branch in a policy: its *kind* says where it runs —

* ``photometric``: changes pixel values only, so it needs no alignment with the teacher. It runs
  in the loader worker as an albumentations transform on the uint8 image.
* ``geometric``: moves pixels. The worker only draws a matrix (`affine.py`); the trainer warps
  the student's input, the teacher's probabilities and any labels with it (`warp.py`).
* ``mix``: CutMix between unlabeled images. The worker draws a box; the trainer pastes the
  partner image *and* the partner's teacher prediction into it (`warp.py`).

Magnitude follows AutoAugment: integer bins 0..10, mapped linearly from the parameter at bin 0
(the identity) to the parameter at bin 10. Signed ops (rotate, shear, brightness, ...) get a
random sign per application. Bin 0 of every op that has a magnitude is exactly the identity.
AutoContrast, Equalize, Invert and Identity have no magnitude; like in AutoAugment it is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable

import albumentations as A
import numpy as np

from udatune.augment import affine

PHOTOMETRIC = "photometric"
GEOMETRIC = "geometric"
MIX = "mix"
KINDS = (PHOTOMETRIC, GEOMETRIC, MIX)
MAX_MAGNITUDE = 10


@dataclass(frozen=True)
class Op:
    """One augmentation op.

    ``build`` turns the op's parameter value into what its kind needs:
    photometric ``value -> A.BasicTransform`` (p=1), geometric ``(value, height, width) -> 3x3``
    matrix (`affine.py` conventions), mix ``(value, rng) -> box (y0, x0, y1, x1)`` in [0, 1].
    """

    name: str
    kind: str
    build: Callable[..., Any] = field(repr=False, compare=False)
    param: str = ""  # what the magnitude sets, for tables ("degrees", "bits", ...)
    at0: float | None = None  # parameter at magnitude 0: the identity; None = no magnitude
    at10: float | None = None  # parameter at magnitude 10
    signed: bool = False  # a random sign per application: at0 ± (at10 - at0) * m / 10
    integer: bool = False  # the parameter is rounded (Posterize bits)
    seeded: bool = False  # the transform draws its own noise; reseeded per image from the policy's rng

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"op {self.name}: kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def has_magnitude(self) -> bool:
        return self.at0 is not None

    def value(self, magnitude: int, sign: int = 1) -> float | None:
        """The parameter at a magnitude bin; ``None`` for ops without a magnitude."""
        if self.at0 is None or self.at10 is None:
            return None
        step = (self.at10 - self.at0) * magnitude / MAX_MAGNITUDE
        value = self.at0 + (sign if self.signed else 1) * step
        return float(round(value)) if self.integer else value

    def is_identity(self, magnitude: int) -> bool:
        """True where the op provably changes nothing (bin 0, or a rounded parameter equal to it)."""
        return self.has_magnitude and self.value(magnitude) == self.at0

    def transform(self, magnitude: int, sign: int = 1) -> A.BasicTransform:
        """A fresh albumentations transform (p=1) for a photometric op at one magnitude and sign."""
        if self.kind != PHOTOMETRIC:
            raise ValueError(f"op {self.name} is {self.kind}; only photometric ops are albumentations transforms")
        if self.is_identity(magnitude):
            return A.NoOp(p=1)
        return self.build(self.value(magnitude, sign))

    def matrix(self, magnitude: int, sign: int, height: int, width: int) -> np.ndarray:
        """The 3x3 output->input matrix of a geometric op for an image of this size."""
        if self.kind != GEOMETRIC:
            raise ValueError(f"op {self.name} is {self.kind}, not geometric")
        return self.build(self.value(magnitude, sign), height, width)

    def box(self, magnitude: int, rng: np.random.Generator) -> np.ndarray:
        """The float32 (4,) box a mix op pastes into; all zeros at magnitude 0."""
        if self.kind != MIX:
            raise ValueError(f"op {self.name} is {self.kind}, not mix")
        if self.is_identity(magnitude):
            return np.zeros(4, dtype=np.float32)
        return self.build(self.value(magnitude), rng)


@lru_cache(maxsize=None)
def cached_transform(name: str, magnitude: int, sign: int) -> A.BasicTransform:
    """The photometric transform for ``(op, magnitude, sign)``, built once per process.

    Constructing an albumentations transform validates its arguments (tens of µs); applying a
    fixed one is cheap. Loader workers are separate processes, so each gets its own cache and a
    reseeded noise transform is never shared between threads.
    """
    return OPS[name].transform(magnitude, sign)


# --- photometric builders: value -> albumentations transform with p=1 ----------------------


def _color_jitter(brightness: float = 1.0, contrast: float = 1.0, saturation: float = 1.0, hue: float = 0.0) -> A.ColorJitter:
    """ColorJitter pinned to single values: torchvision's (= PIL ImageEnhance's) blends."""
    return A.ColorJitter(
        brightness=(brightness, brightness),
        contrast=(contrast, contrast),
        saturation=(saturation, saturation),
        hue=(hue, hue),
        p=1,
    )


def _solarize(threshold: float) -> A.BasicTransform:
    # AutoAugment inverts pixels >= threshold (in 0..256 levels); albumentations takes threshold/255.
    level = min(threshold / 255.0, 1.0)
    return A.Solarize(threshold_range=(level, level), p=1)


def _sharpen(factor: float) -> A.BasicTransform:
    # PIL's Sharpness(f) adds (f - 1)/13 * (8c - neighbours); A.Sharpen with lightness 1 adds
    # alpha * (8c - neighbours), so alpha = (f - 1)/13 reproduces PIL inside the frame.
    alpha = (factor - 1.0) / 13.0
    return A.Sharpen(alpha=(alpha, alpha), lightness=(1.0, 1.0), p=1)


def _cutout(side: float) -> A.BasicTransform:
    return A.CoarseDropout(
        num_holes_range=(1, 1), hole_height_range=(side, side), hole_width_range=(side, side), fill=128, p=1
    )


# --- mix builder -------------------------------------------------------------------------------


def cutmix_box(area: float, rng: np.random.Generator) -> np.ndarray:
    """A box covering ``area`` of the frame, square in normalised units, fully inside the frame."""
    side = float(np.sqrt(area))
    y0, x0 = rng.uniform(0.0, 1.0 - side, size=2)
    return np.array([y0, x0, y0 + side, x0 + side], dtype=np.float32)


def _op(name: str, kind: str, build: Callable[..., Any], **kw: Any) -> tuple[str, Op]:
    return name, Op(name, kind, build, **kw)


OPS: dict[str, Op] = dict(
    [
        _op("Identity", PHOTOMETRIC, lambda _: A.NoOp(p=1)),
        # The 14 AutoAugment ops (ranges as in AutoAugment / torchvision's RandAugment).
        _op("ShearX", GEOMETRIC, lambda v, h, w: affine.shear_x(v, h, w), param="shear", at0=0.0, at10=0.3, signed=True),
        _op("ShearY", GEOMETRIC, lambda v, h, w: affine.shear_y(v, h, w), param="shear", at0=0.0, at10=0.3, signed=True),
        _op("TranslateX", GEOMETRIC, lambda v, h, w: affine.translation(v, 0.0), param="fraction of width", at0=0.0, at10=0.45, signed=True),
        _op("TranslateY", GEOMETRIC, lambda v, h, w: affine.translation(0.0, v), param="fraction of height", at0=0.0, at10=0.45, signed=True),
        _op("Rotate", GEOMETRIC, lambda v, h, w: affine.rotation(v, h, w), param="degrees", at0=0.0, at10=30.0, signed=True),
        _op("AutoContrast", PHOTOMETRIC, lambda _: A.AutoContrast(p=1)),
        _op("Invert", PHOTOMETRIC, lambda _: A.InvertImg(p=1)),
        _op("Equalize", PHOTOMETRIC, lambda _: A.Equalize(p=1)),
        _op("Solarize", PHOTOMETRIC, _solarize, param="threshold (levels)", at0=256.0, at10=0.0),
        _op("Posterize", PHOTOMETRIC, lambda v: A.Posterize(num_bits=int(v), p=1), param="bits", at0=8.0, at10=4.0, integer=True),
        _op("Contrast", PHOTOMETRIC, lambda v: _color_jitter(contrast=v), param="factor", at0=1.0, at10=1.9, signed=True),
        _op("Color", PHOTOMETRIC, lambda v: _color_jitter(saturation=v), param="saturation factor", at0=1.0, at10=1.9, signed=True),
        _op("Brightness", PHOTOMETRIC, lambda v: _color_jitter(brightness=v), param="factor", at0=1.0, at10=1.9, signed=True),
        # A.Sharpen only sharpens, so Sharpness has no blurring (negative) side; GaussianBlur covers that.
        _op("Sharpness", PHOTOMETRIC, _sharpen, param="factor (PIL)", at0=1.0, at10=1.9),
        # Segmentation-minded extras.
        _op("GaussianBlur", PHOTOMETRIC, lambda v: A.GaussianBlur(blur_limit=0, sigma_limit=(v, v), p=1), param="sigma (px)", at0=0.0, at10=2.0),
        _op("GaussianNoise", PHOTOMETRIC, lambda v: A.GaussNoise(std_range=(v, v), p=1), param="std (fraction of 255)", at0=0.0, at10=0.1, seeded=True),
        _op("Hue", PHOTOMETRIC, lambda v: _color_jitter(hue=v), param="shift (fraction of hue circle)", at0=0.0, at10=0.1, signed=True),
        _op("Gamma", PHOTOMETRIC, lambda v: A.RandomGamma(gamma_limit=(100 * v, 100 * v), p=1), param="gamma", at0=1.0, at10=1.5, signed=True),
        _op("CutOut", PHOTOMETRIC, _cutout, param="hole side (fraction of frame)", at0=0.0, at10=0.4, seeded=True),
        _op("CutMix", MIX, cutmix_box, param="box area (fraction of frame)", at0=0.0, at10=0.5),
    ]
)

# Op sets a RandAugment / TrivialAugment policy can draw from.
SPACES: dict[str, tuple[str, ...]] = {
    "all": tuple(OPS),
    "photometric": tuple(name for name, op in OPS.items() if op.kind == PHOTOMETRIC),
}


def _fmt(op: Op, magnitude: int) -> str:
    value = op.value(magnitude)
    if value is None:
        return "—"
    text = f"{value:g}"
    if op.signed and magnitude > 0:
        step = abs(value - op.at0)
        text = f"{op.at0:g} ± {step:g}" if op.at0 != 0 else f"±{step:g}"
    return text


def describe_ops() -> list[dict]:
    """One row per op for ``udatune ops``: kind, parameter, its value at magnitudes 0, 5, 10."""
    rows = []
    for op in OPS.values():
        rows.append(
            {
                "name": op.name,
                "kind": op.kind,
                "parameter": op.param or "—",
                "at_0": _fmt(op, 0),
                "at_5": _fmt(op, 5),
                "at_10": _fmt(op, 10),
                "signed": op.signed,
                "range": "no magnitude" if not op.has_magnitude else f"{_fmt(op, 0)} → {_fmt(op, 10)}",
            }
        )
    return rows
