"""FileFrames, preloading and the per-file checks that every real-data builder relies on."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from udatune.data.base import ArrayFrames
from udatune.data.files import (
    ConcatFrames,
    FileFrames,
    describe_ids,
    identity_lut,
    load_checked,
    preload,
    validate_frames,
)
from udatune.errors import DataError


def lut_11_void() -> np.ndarray:
    lut = identity_lut()
    lut[11] = 255
    return lut


def test_load_returns_rgb_uint8_and_mapped_mask(tmp_path, png):
    image = png.rgb(tmp_path / "a.png", seed=3)
    mask = png.mask(tmp_path / "a_mask.png", [0, 5, 11])
    frames = FileFrames(((image, mask),), lut=lut_11_void(), dataset="Test")

    rgb, ids = frames.load(0)

    assert rgb.dtype == np.uint8 and rgb.shape == (12, 16, 3)
    assert np.array_equal(rgb, np.asarray(Image.open(image)))
    assert ids.dtype == np.uint8 and ids.shape == (12, 16)
    assert set(np.unique(ids).tolist()) == {0, 5, 255}


def test_unlabeled_frame_has_no_mask_and_grayscale_becomes_rgb(tmp_path, png):
    gray = png.save(tmp_path / "g.png", Image.fromarray(np.full((12, 16), 80, np.uint8)))
    rgb, mask = FileFrames(((gray, None),)).load(0)
    assert mask is None
    assert rgb.shape == (12, 16, 3) and (rgb == 80).all()


def test_palette_mask_is_read_as_ids(tmp_path, png):
    picture = Image.fromarray(np.array([[0, 1], [2, 1]], np.uint8), mode="L").convert("P")
    mask = png.save(tmp_path / "p.png", picture)
    image = png.rgb(tmp_path / "i.png", 2, 2)
    _, ids = FileFrames(((image, mask),)).load(0)
    assert ids.tolist() == [[0, 1], [2, 1]]


def test_resize_is_bilinear_for_images_and_nearest_for_masks(tmp_path, png):
    image = png.rgb(tmp_path / "a.png", 12, 16)
    mask = png.mask(tmp_path / "m.png", [1, 2, 11], 12, 16)
    frames = FileFrames(((image, mask),), size=(7, 9), lut=lut_11_void())

    rgb, ids = frames.load(0)

    assert rgb.shape == (7, 9, 3) and ids.shape == (7, 9)
    assert set(np.unique(ids).tolist()) <= {1, 2, 255}  # no blended ids such as 1.5 or 6


def test_validate_returns_mapped_ids_found(tmp_path, png):
    frames = FileFrames(
        ((png.rgb(tmp_path / "a.png"), png.mask(tmp_path / "m.png", [3, 11])),), lut=lut_11_void()
    )
    assert validate_frames(frames, 11) == frozenset({3, 255})


def test_preload_matches_lazy_loading(tmp_path, png):
    pairs = tuple(
        (png.rgb(tmp_path / f"{i}.png", seed=i), png.mask(tmp_path / f"{i}m.png", [i, 11])) for i in range(3)
    )
    lazy = FileFrames(pairs, lut=lut_11_void())
    arrays = preload(lazy, 11)
    assert isinstance(arrays, ArrayFrames) and arrays.images.shape == (3, 12, 16, 3)
    for i in range(3):
        for got, expected in zip(arrays.load(i), lazy.load(i)):
            assert np.array_equal(got, expected)


def test_preload_of_differing_sizes_asks_for_an_image_size(tmp_path, png):
    pairs = ((png.rgb(tmp_path / "a.png", 12, 16), None), (png.rgb(tmp_path / "big.png", 20, 16), None))
    with pytest.raises(DataError, match="big.png.*image size"):
        preload(FileFrames(pairs))
    assert preload(FileFrames(pairs, size=(6, 8))).images.shape == (2, 6, 8, 3)


def test_load_checked_keeps_small_splits_in_memory_and_large_or_mixed_ones_lazy(tmp_path, png):
    same = FileFrames(((png.rgb(tmp_path / "a.png"), None), (png.rgb(tmp_path / "b.png"), None)))
    mixed = FileFrames(((png.rgb(tmp_path / "c.png", 12, 16), None), (png.rgb(tmp_path / "d.png", 10, 16), None)))
    assert isinstance(load_checked(same, None).frames, ArrayFrames)
    assert load_checked(same, None, max_bytes=100).frames is same
    assert load_checked(mixed, None).frames is mixed


def test_load_checked_checks_ids_while_preloading(tmp_path, png):
    pair = (png.rgb(tmp_path / "a.png"), png.mask(tmp_path / "bad.png", [0, 14]))
    frames = FileFrames((pair,), lut=lut_11_void(), dataset="CamVid")
    with pytest.raises(DataError, match=r"CamVid: mask .*bad\.png has id 14.*0-10 = the 11 classes; 11, 255 = void"):
        load_checked(frames, 11)


def test_subset_and_concat(tmp_path, png):
    pairs = tuple((png.rgb(tmp_path / f"{i}.png", seed=i), png.mask(tmp_path / f"m{i}.png", [i])) for i in range(4))
    frames = FileFrames(pairs)
    unlabeled = frames.subset([3, 1], with_masks=False)
    assert [p[0].name for p in unlabeled.pairs] == ["3.png", "1.png"] and unlabeled.load(0)[1] is None
    both = ConcatFrames((frames.subset([0]), unlabeled))
    assert len(both) == 3
    assert np.array_equal(both.load(2)[0], frames.load(1)[0])
    with pytest.raises(IndexError):
        both.load(3)


def test_describe_ids_lists_classes_and_void_as_ranges():
    assert describe_ids(lut_11_void(), 11) == "0-10 = the 11 classes; 11, 255 = void"
    assert describe_ids(None, 3) == "0-2 = the 3 classes; 255 = void"


# --- every bad file raises one DataError paragraph that names it --------------------------


def _bad_pair(kind: str, tmp_path, png):
    image = tmp_path / "img.png"
    mask = tmp_path / "lbl.png"
    if kind == "missing mask":
        return png.rgb(image), mask, "lbl.png"
    if kind == "missing image":
        return image, png.mask(mask, [0]), "img.png"
    if kind == "colour mask":
        return png.rgb(image), png.rgb(mask), "lbl.png"
    if kind == "size mismatch":
        return png.rgb(image, 12, 16), png.mask(mask, [0], 10, 16), "lbl.png"
    if kind == "id outside":
        return png.rgb(image), png.mask(mask, [0, 12]), "lbl.png"
    if kind == "garbage image":
        return png.garbage(image), png.mask(mask, [0]), "img.png"
    if kind == "truncated image":
        return png.truncated(image), png.mask(mask, [0], 24, 32), "img.png"
    if kind == "garbage mask":
        return png.rgb(image), png.garbage(mask), "lbl.png"
    if kind == "16-bit image":
        return png.save(image, Image.fromarray(np.zeros((12, 16), np.uint16))), png.mask(mask, [0]), "img.png"
    if kind == "16-bit mask id":
        return png.rgb(image), png.save(mask, Image.fromarray(np.full((12, 16), 300, np.uint16))), "lbl.png"
    raise AssertionError(kind)


BAD_KINDS = [
    "missing mask", "missing image", "colour mask", "size mismatch", "id outside", "garbage image",
    "truncated image", "garbage mask", "16-bit image", "16-bit mask id",
]  # fmt: skip


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_every_bad_file_raises_a_data_error_naming_it(kind, tmp_path, png):
    image, mask, culprit = _bad_pair(kind, tmp_path, png)
    frames = FileFrames(((image, mask),), lut=lut_11_void(), dataset="Test")
    for check in (lambda: validate_frames(frames, 11), lambda: preload(frames, 11)):
        with pytest.raises(DataError) as caught:
            check()
        message = str(caught.value)
        assert culprit in message and message.startswith("Test: ")
        assert "\n" not in message and caught.value.__cause__ is None


def test_frames_survive_pickling_for_loader_workers(tmp_path, png):
    import pickle

    frames = FileFrames(((png.rgb(tmp_path / "a.png"), png.mask(tmp_path / "m.png", [11, 2])),), lut=lut_11_void())
    copy = pickle.loads(pickle.dumps(ConcatFrames((frames,))))
    for got, expected in zip(copy.load(0), frames.load(0)):
        assert np.array_equal(got, expected)
