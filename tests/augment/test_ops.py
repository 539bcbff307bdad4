"""The op registry: every op runs on odd-size uint8 images, bin 0 is the identity, bins grow the effect."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from udatune.augment.ops import GEOMETRIC, MIX, OPS, PHOTOMETRIC, SPACES, cached_transform, describe_ops

AUTOAUGMENT_14 = {
    "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "AutoContrast", "Invert",
    "Equalize", "Solarize", "Posterize", "Contrast", "Color", "Brightness", "Sharpness",
}
EXTRAS = {"GaussianBlur", "GaussianNoise", "Hue", "Gamma", "CutOut", "CutMix"}
PHOTO = [name for name, op in OPS.items() if op.kind == PHOTOMETRIC]
PHOTO_WITH_MAGNITUDE = [name for name in PHOTO if OPS[name].has_magnitude]
GEO = [name for name, op in OPS.items() if op.kind == GEOMETRIC]
SHAPE = (37, 53, 3)


def _image(seed: int = 0, shape=SHAPE) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _apply(name: str, magnitude: int, image: np.ndarray, sign: int = 1, seed: int = 0) -> np.ndarray:
    transform = cached_transform(name, magnitude, sign)
    if OPS[name].seeded:
        transform.set_random_seed(seed)
    return transform(image=image)["image"]


def test_registry_has_autoaugment_ops_and_extras_with_their_kinds():
    assert AUTOAUGMENT_14 | EXTRAS <= set(OPS)
    assert set(GEO) == {"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"}
    assert [name for name, op in OPS.items() if op.kind == MIX] == ["CutMix"]
    assert OPS["CutOut"].kind == PHOTOMETRIC
    assert all(op.name == name for name, op in OPS.items())
    assert set(SPACES["photometric"]) == set(PHOTO)


@pytest.mark.parametrize("name", PHOTO)
@pytest.mark.parametrize("shape", [SHAPE, (1, 1, 3), (17, 9, 3)])
def test_every_photometric_op_at_every_magnitude_keeps_uint8_shape(name, shape):
    image = _image(1, shape)
    for magnitude in range(11):
        for sign in (1, -1):
            out = _apply(name, magnitude, image, sign)
            assert out.dtype == np.uint8 and out.shape == shape, (name, magnitude, sign)


@pytest.mark.parametrize("name", PHOTO_WITH_MAGNITUDE)
def test_magnitude_zero_is_identity_photometric(name):
    image = _image(2)
    for sign in (1, -1):
        np.testing.assert_array_equal(_apply(name, 0, image, sign), image)


@pytest.mark.parametrize("name", GEO)
def test_magnitude_zero_is_identity_geometric(name):
    for sign in (1, -1):
        np.testing.assert_array_equal(OPS[name].matrix(0, sign, 37, 53), np.eye(3))


def test_magnitude_zero_cutmix_draws_no_box():
    assert not OPS["CutMix"].box(0, np.random.default_rng(0)).any()


@pytest.mark.parametrize("name", PHOTO_WITH_MAGNITUDE)
def test_larger_magnitude_changes_the_image_more(name):
    image = _image(3)

    def change(magnitude: int) -> float:
        return float(np.abs(_apply(name, magnitude, image).astype(int) - image).mean())

    assert 0 < change(3) < change(10), name


@pytest.mark.parametrize("name", [n for n in PHOTO_WITH_MAGNITUDE if OPS[n].signed])
def test_signed_ops_go_both_ways(name):
    image = _image(4)
    up, down = _apply(name, 8, image, 1), _apply(name, 8, image, -1)
    assert not np.array_equal(up, down)


@pytest.mark.parametrize("name", GEO)
def test_signed_geometric_ops_undo_each_other(name):
    """Rotate, shear and translate by -v invert +v: the sign flips the motion, not something else."""
    plus, minus = OPS[name].matrix(7, 1, 37, 53), OPS[name].matrix(7, -1, 37, 53)
    assert not np.allclose(plus, np.eye(3))
    np.testing.assert_allclose(plus @ minus, np.eye(3), atol=1e-12)


def test_ops_without_magnitude_do_what_they_say():
    image = _image(5)
    for magnitude in (0, 10):
        np.testing.assert_array_equal(_apply("Identity", magnitude, image), image)
        np.testing.assert_array_equal(_apply("Invert", magnitude, image), 255 - image)
    dull = (100 + _image(6) // 8).astype(np.uint8)  # values 100..131 per channel
    stretched = _apply("AutoContrast", 0, dull)
    assert stretched.min() == 0 and stretched.max() == 255
    equalized = _apply("Equalize", 0, dull)
    assert equalized.max() == 255 and equalized.std() > 3 * dull.std()


def _pil(image: np.ndarray, fn) -> np.ndarray:
    return np.asarray(fn(Image.fromarray(image)))


@pytest.mark.parametrize(
    ("name", "magnitude", "reference"),
    [
        ("Brightness", 5, lambda im: ImageEnhance.Brightness(im).enhance(1.45)),
        ("Color", 5, lambda im: ImageEnhance.Color(im).enhance(1.45)),
        ("Contrast", 5, lambda im: ImageEnhance.Contrast(im).enhance(1.45)),
        ("Sharpness", 10, lambda im: ImageEnhance.Sharpness(im).enhance(1.9)),
        ("Solarize", 5, lambda im: ImageOps.solarize(im, 128)),
        ("Posterize", 10, lambda im: ImageOps.posterize(im, 4)),
    ],
)
def test_autoaugment_ops_match_pil_meaning(name, magnitude, reference):
    """Magnitudes mean what they mean in AutoAugment (which is defined with PIL)."""
    image = _image(7)
    ours = _apply(name, magnitude, image).astype(int)
    theirs = _pil(image, reference).astype(int)
    inner = (slice(1, -1), slice(1, -1))  # PIL leaves the one-pixel border unsharpened
    assert np.abs(ours[inner] - theirs[inner]).max() <= 2, name


def test_noise_ops_are_reproducible_from_the_seed():
    image = _image(8)
    for name in ("GaussianNoise", "CutOut"):
        assert np.array_equal(_apply(name, 7, image, seed=3), _apply(name, 7, image, seed=3))
        assert not np.array_equal(_apply(name, 7, image, seed=3), _apply(name, 7, image, seed=4))


def test_cutmix_box_has_the_magnitude_area_and_stays_in_frame():
    rng = np.random.default_rng(0)
    for magnitude in range(1, 11):
        y0, x0, y1, x1 = OPS["CutMix"].box(magnitude, rng)
        assert 0 <= y0 < y1 <= 1 and 0 <= x0 < x1 <= 1
        assert (y1 - y0) * (x1 - x0) == pytest.approx(0.05 * magnitude, rel=1e-5)


def test_describe_ops_has_one_row_per_op_with_values():
    rows = {row["name"]: row for row in describe_ops()}
    assert list(rows) == list(OPS)
    assert rows["Rotate"]["kind"] == "geometric"
    assert (rows["Rotate"]["at_0"], rows["Rotate"]["at_5"], rows["Rotate"]["at_10"]) == ("0", "±15", "±30")
    assert (rows["Posterize"]["at_0"], rows["Posterize"]["at_10"]) == ("8", "4")
    assert rows["Invert"]["range"] == "no magnitude"
    assert all({"name", "kind", "parameter", "at_0", "at_5", "at_10", "range"} <= set(row) for row in rows.values())
