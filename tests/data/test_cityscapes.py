"""Cityscapes layout and label-id mapping, on tiny frames written in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from udatune.config import DataConfig
from udatune.data.cityscapes import CLASSES, build_cityscapes, cityscapes_lut
from udatune.data.files import FileFrames
from udatune.data.registry import DATASETS
from udatune.errors import DataError

CITIES = {"train": ("aachen", "bremen"), "val": ("frankfurt",)}
FRAMES_PER_CITY = {"train": 3, "val": 2}
LABEL_IDS = [7, 26, 0, 33, 255]  # road, car, unlabeled, bicycle, license plate


def write_cityscapes(root: Path, png) -> Path:
    for split, cities in CITIES.items():
        for city in cities:
            for i in range(FRAMES_PER_CITY[split]):
                name = f"{city}_000000_{i:06d}"
                png.rgb(root / "leftImg8bit" / split / city / f"{name}_leftImg8bit.png", seed=i)
                png.mask(root / "gtFine" / split / city / f"{name}_gtFine_labelIds.png", LABEL_IDS)
                png.rgb(root / "gtFine" / split / city / f"{name}_gtFine_color.png")  # ignored
    return root


def frame(root: Path, split: str, city: str, index: int, kind: str) -> Path:
    folder, suffix = {"image": ("leftImg8bit", "leftImg8bit"), "mask": ("gtFine", "gtFine_labelIds")}[kind]
    return root / folder / split / city / f"{city}_000000_{index:06d}_{suffix}.png"


def cityscapes(root: Path, **options) -> DataConfig:
    return DataConfig(**{"dataset": "cityscapes", "root": str(root), "labeled": "2", **options})


def test_registered_under_its_name():
    assert DATASETS["cityscapes"] is build_cityscapes


def test_lut_is_the_standard_train_id_table():
    lut = cityscapes_lut()
    assert len(CLASSES) == 19 and CLASSES[0] == "road" and CLASSES[18] == "bicycle"
    assert (lut[7], lut[8], lut[26], lut[33]) == (0, 1, 13, 18)
    assert lut[0] == lut[6] == lut[29] == lut[255] == 255
    assert sorted(int(v) for v in lut[:34] if v != 255) == list(range(19))


def test_loads_lazily_with_label_ids_mapped_to_train_ids(tmp_path, png):
    data = build_cityscapes(cityscapes(write_cityscapes(tmp_path, png)))

    assert data.classes == CLASSES
    assert (len(data.labeled), len(data.unlabeled), len(data.val)) == (2, 4, 2)
    assert data.test is None
    assert all(isinstance(split, FileFrames) for split in (data.labeled, data.unlabeled, data.val))
    image, mask = data.val.load(0)
    assert image.dtype == np.uint8 and image.shape == (12, 16, 3)
    assert mask.dtype == np.uint8 and mask.shape == (12, 16)
    # columns cycle through LABEL_IDS: 7 -> 0 (road), 26 -> 13 (car), 0 -> 255, 33 -> 18, 255 -> 255
    assert mask[0, :5].tolist() == [0, 13, 255, 18, 255]
    assert data.unlabeled.load(0)[1] is None


def test_labeled_fraction_all_and_unlabeled_root(tmp_path, png):
    root = write_cityscapes(tmp_path / "cs", png)
    for i in range(3):
        png.rgb(tmp_path / "extra" / f"{i}.png")
    assert len(build_cityscapes(cityscapes(root, labeled="0.5")).labeled) == 3
    everything = build_cityscapes(cityscapes(root, labeled="all", unlabeled_root=str(tmp_path / "extra")))
    assert (len(everything.labeled), len(everything.unlabeled)) == (6, 3)


def test_image_size_resizes_and_keeps_ids_valid(tmp_path, png):
    data = build_cityscapes(cityscapes(write_cityscapes(tmp_path, png), labeled="all", image_size=(5, 6)))
    image, mask = data.labeled.load(3)
    assert image.shape == (5, 6, 3) and mask.shape == (5, 6)
    assert set(np.unique(mask).tolist()) <= {0, 13, 18, 255}


def test_only_labeled_and_val_frames_are_decoded(tmp_path, png):
    """The documented trade-off: a broken mask among the unlabeled train frames is not opened."""
    root = write_cityscapes(tmp_path, png)
    png.garbage(frame(root, "train", "bremen", 2, "mask"))
    data = build_cityscapes(cityscapes(root, labeled="1", split_seed=0))
    assert "bremen_000000_000002" not in str(data.labeled.pairs)
    with pytest.raises(DataError, match="bremen_000000_000002_gtFine_labelIds.png"):
        build_cityscapes(cityscapes(root, labeled="all"))


# --- bad inputs: one DataError naming the file ------------------------------------------------


def _missing_root(root, png):
    return str(root)


def _missing_split_folder(root, png):
    write_cityscapes(root, png)
    for path in sorted((root / "gtFine" / "val").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    (root / "gtFine" / "val").rmdir()
    return str(root / "gtFine" / "val")


def _image_without_mask(root, png):
    write_cityscapes(root, png)
    frame(root, "train", "aachen", 1, "mask").unlink()
    return "aachen_000000_000001_leftImg8bit.png"


def _mask_without_image(root, png):
    write_cityscapes(root, png)
    png.mask(frame(root, "val", "frankfurt", 7, "mask"), [7])
    return "frankfurt_000000_000007_gtFine_labelIds.png"


def _size_mismatch(root, png):
    write_cityscapes(root, png)
    png.mask(frame(root, "val", "frankfurt", 1, "mask"), [7], 6, 16)
    return "frankfurt_000000_000001_gtFine_labelIds.png"


def _id_outside(root, png):
    write_cityscapes(root, png)
    png.mask(frame(root, "val", "frankfurt", 0, "mask"), [7, 40])
    return "frankfurt_000000_000000_gtFine_labelIds.png has id 40"


def _unreadable(root, png):
    write_cityscapes(root, png)
    png.truncated(frame(root, "val", "frankfurt", 1, "image"))
    return "frankfurt_000000_000001_leftImg8bit.png"


def _empty_dataset(root, png):
    for folder in ("leftImg8bit", "gtFine"):
        for split in ("train", "val"):
            (root / folder / split).mkdir(parents=True)
    return str(root / "leftImg8bit" / "train")


BAD = [
    _missing_root, _missing_split_folder, _image_without_mask, _mask_without_image,
    _size_mismatch, _id_outside, _unreadable, _empty_dataset,
]  # fmt: skip


@pytest.mark.parametrize("breakage", BAD, ids=lambda f: f.__name__.strip("_"))
def test_bad_input_raises_one_data_error_naming_the_file(breakage, tmp_path, png):
    root = tmp_path / "cityscapes"
    culprit = breakage(root, png)
    with pytest.raises(DataError) as caught:
        build_cityscapes(cityscapes(root))
    message = str(caught.value)
    assert culprit in message and message.startswith(("Cityscapes: ", "--data-root"))
    assert "\n" not in message
