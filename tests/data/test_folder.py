"""The generic images/ + masks/ layout, on tiny frames written in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from udatune.config import DataConfig
from udatune.data.base import ArrayFrames
from udatune.data.folder import build_folder
from udatune.data.registry import DATASETS
from udatune.errors import DataError


def write_folder(
    root: Path, png, frames: int = 10, val: int = 0, unlabeled: int = 0, classes: str | None = None
) -> Path:
    """``frames`` labeled pairs (every third image a JPEG), optional val/, unlabeled/, classes.txt."""
    for i in range(frames):
        suffix = ".jpg" if i % 3 == 0 else ".png"
        png.rgb(root / "images" / f"f{i:02d}{suffix}", seed=i)
        png.mask(root / "masks" / f"f{i:02d}.png", [0, 1, 2, 255] if i else [0, 3])
    for i in range(val):
        png.rgb(root / "val" / "images" / f"v{i}.png", seed=50 + i)
        png.mask(root / "val" / "masks" / f"v{i}.png", [1, 2])
    for i in range(unlabeled):
        png.rgb(root / "unlabeled" / f"u{i}.bmp", seed=80 + i)
    if classes is not None:
        (root / "classes.txt").write_text(classes)
    return root


def folder(root: Path, **options) -> DataConfig:
    return DataConfig(**{"dataset": "folder", "root": str(root), "labeled": "2", **options})


def test_registered_under_its_name():
    assert DATASETS["folder"] is build_folder


def test_infers_classes_and_holds_out_a_fifth_as_val(tmp_path, png):
    data = build_folder(folder(write_folder(tmp_path, png)))

    assert data.classes == ("class_0", "class_1", "class_2", "class_3")  # largest id 3; 255 is void
    assert (len(data.val), len(data.labeled), len(data.unlabeled)) == (2, 2, 6)
    assert isinstance(data.labeled, ArrayFrames)
    image, mask = data.labeled.load(0)
    assert image.dtype == np.uint8 and image.shape == (12, 16, 3)
    assert mask.dtype == np.uint8 and mask.shape == (12, 16)
    assert data.test is None


def test_held_out_val_depends_on_the_split_seed_only(tmp_path, png):
    root = write_folder(tmp_path, png)

    def val_images(seed, labeled="2"):
        return np.asarray(build_folder(folder(root, split_seed=seed, labeled=labeled)).val.images)

    assert np.array_equal(val_images(0), val_images(0, labeled="all"))
    assert any(not np.array_equal(val_images(0), val_images(seed)) for seed in (1, 2, 3))


def test_val_folder_classes_file_and_unlabeled_folders(tmp_path, png):
    root = write_folder(tmp_path / "data", png, frames=4, val=3, unlabeled=2, classes="bg\ncat\n\ndog\nbird\n")
    for i in range(3):
        png.rgb(tmp_path / "extra" / f"e{i}.tif")
    data = build_folder(folder(root, labeled="all", unlabeled_root=str(tmp_path / "extra")))

    assert data.classes == ("bg", "cat", "dog", "bird")
    assert (len(data.labeled), len(data.val), len(data.unlabeled)) == (4, 3, 2 + 3)
    assert set(np.unique(data.val.load(2)[1]).tolist()) == {1, 2}
    assert data.unlabeled.load(4)[1] is None and data.unlabeled.load(4)[0].shape == (12, 16, 3)


def test_labeled_fraction(tmp_path, png):
    data = build_folder(folder(write_folder(tmp_path, png), labeled="0.25"))
    assert (len(data.labeled), len(data.unlabeled)) == (2, 6)


def test_image_size_resizes_and_keeps_ids_valid(tmp_path, png):
    data = build_folder(folder(write_folder(tmp_path, png), labeled="all", image_size=(9, 5)))
    assert data.labeled.images.shape == (8, 9, 5, 3)
    assert set(np.unique(data.labeled.masks).tolist()) <= {0, 1, 2, 3, 255}


# --- bad inputs: one DataError naming the file ------------------------------------------------


def _missing_root(root, png):
    return str(root)


def _missing_masks_folder(root, png):
    png.rgb(root / "images" / "a.png")
    return str(root / "masks")


def _image_without_mask(root, png):
    write_folder(root, png)
    png.rgb(root / "images" / "lonely.jpeg")
    return "lonely.jpeg"


def _mask_without_image(root, png):
    write_folder(root, png)
    png.mask(root / "masks" / "orphan.png", [1])
    return "orphan.png"


def _val_image_without_mask(root, png):
    write_folder(root, png, val=2)
    png.rgb(root / "val" / "images" / "v9.png")
    return "v9.png"


def _jpeg_mask(root, png):
    write_folder(root, png)
    png.rgb(root / "masks" / "f01.jpg")
    return "f01.jpg"


def _size_mismatch(root, png):
    write_folder(root, png)
    png.mask(root / "masks" / "f04.png", [1], 12, 20)
    return "f04.png"


def _id_outside_classes_file(root, png):
    write_folder(root, png, classes="a\nb\nc\n")
    return "f00.png has id 3"


def _unreadable_image(root, png):
    write_folder(root, png)
    png.garbage(root / "images" / "f05.png")
    return "f05.png"


def _unreadable_unlabeled_image(root, png):
    write_folder(root, png)
    png.truncated(root / "unlabeled" / "broken.png")
    return "broken.png"


def _empty_dataset(root, png):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    return str(root / "images")


def _only_void(root, png):
    png.rgb(root / "images" / "a.png")
    png.mask(root / "masks" / "a.png", [255])
    png.rgb(root / "images" / "b.png")
    png.mask(root / "masks" / "b.png", [255])
    return str(root)


def _same_stem_twice(root, png):
    write_folder(root, png)
    png.rgb(root / "images" / "f01.jpg")
    return "f01.jpg"


def _not_an_image(root, png):
    write_folder(root, png)
    (root / "images" / "notes.txt").write_text("hello")
    return "notes.txt"


def _empty_classes_file(root, png):
    write_folder(root, png, classes="\n\n")
    return "classes.txt"


BAD = [
    _missing_root, _missing_masks_folder, _image_without_mask, _mask_without_image, _val_image_without_mask,
    _jpeg_mask, _size_mismatch, _id_outside_classes_file, _unreadable_image, _unreadable_unlabeled_image,
    _empty_dataset, _only_void, _same_stem_twice, _not_an_image, _empty_classes_file,
]  # fmt: skip


@pytest.mark.parametrize("breakage", BAD, ids=lambda f: f.__name__.strip("_"))
def test_bad_input_raises_one_data_error_naming_the_file(breakage, tmp_path, png):
    root = tmp_path / "data"
    culprit = breakage(root, png)
    with pytest.raises(DataError) as caught:
        build_folder(folder(root))
    message = str(caught.value)
    assert culprit in message
    assert "\n" not in message
