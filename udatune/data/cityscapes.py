"""Cityscapes (fine annotations), mapped from its 34 label ids to the 19 standard train ids.

    root/leftImg8bit/{train,val}/<city>/<name>_leftImg8bit.png
    root/gtFine/{train,val}/<city>/<name>_gtFine_labelIds.png

The public test split has no labels, so ``test`` is None. Other gtFine files (colour,
instance ids, polygons) are ignored.

Checking cost: Cityscapes has ~3,500 labeled 2048x1024 frames, and decoding every one takes
minutes. The builder therefore checks that every file exists and is paired, but decodes and
checks (readable, sizes match, ids valid) only the frames whose labels are used, the labeled
subset and val. The other train frames feed the unlabeled pool without their masks, so a broken
mask there cannot reach the loss; a broken image there still raises a `DataError` naming the file
when a loader first reads it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from udatune.config import DataConfig
from udatune.data.base import IGNORE_INDEX, SegmentationData, as_path
from udatune.data.files import (
    dataset_identity,
    FileFrames,
    Pair,
    identity_lut,
    split_train,
    unlabeled_folder,
    validate_frames,
    with_extras,
)
from udatune.data.registry import register_dataset
from udatune.errors import DataError

NAME = "Cityscapes"
IMAGE_SUFFIX = "_leftImg8bit.png"
MASK_SUFFIX = "_gtFine_labelIds.png"

# (train id name, Cityscapes label id), in train-id order.
TRAIN_IDS = (
    ("road", 7), ("sidewalk", 8), ("building", 11), ("wall", 12), ("fence", 13),
    ("pole", 17), ("traffic light", 19), ("traffic sign", 20), ("vegetation", 21),
    ("terrain", 22), ("sky", 23), ("person", 24), ("rider", 25), ("car", 26),
    ("truck", 27), ("bus", 28), ("train", 31), ("motorcycle", 32), ("bicycle", 33),
)  # fmt: skip
CLASSES = tuple(name for name, _ in TRAIN_IDS)
LABEL_IDS = 34  # label ids 0..33 exist; the license plate (-1) is stored as 255


def cityscapes_lut() -> np.ndarray:
    """Label ids 0-33 and 255 map to a train id or void; ids 34-254 do not exist and are reported."""
    lut = identity_lut()
    lut[:LABEL_IDS] = IGNORE_INDEX
    for train_id, (_, label_id) in enumerate(TRAIN_IDS):
        lut[label_id] = train_id
    return lut


@register_dataset("cityscapes")
def build_cityscapes(cfg: DataConfig) -> SegmentationData:
    """Pair and split Cityscapes; decode and check only the labeled subset and val (see module doc)."""
    root = as_path(cfg.root).resolve()
    lut = cityscapes_lut()
    frames = {split: FileFrames(split_pairs(root, split), cfg.image_size, lut, NAME) for split in ("train", "val")}
    labeled, unlabeled = split_train(frames["train"], cfg.labeled, cfg.split_seed)
    for checked in (labeled, frames["val"]):
        validate_frames(checked, len(CLASSES))
    extra = unlabeled_folder(cfg.unlabeled_root, cfg.image_size, NAME)
    identity = dataset_identity("cityscapes", root, cfg, frames, extra)
    return SegmentationData(
        name="cityscapes",
        classes=CLASSES,
        labeled=labeled,
        unlabeled=with_extras(unlabeled, extra),
        val=frames["val"],
        test=None,
        identity=identity,
    )


def split_pairs(root: Path, split: str) -> tuple[Pair, ...]:
    """Every ``<name>_leftImg8bit.png`` of a split with its ``<name>_gtFine_labelIds.png``."""
    image_dir, mask_dir = _folder(root / "leftImg8bit" / split), _folder(root / "gtFine" / split)
    images, masks = _by_frame(image_dir, IMAGE_SUFFIX), _by_frame(mask_dir, MASK_SUFFIX)
    if not images:
        raise DataError(f"{NAME}: {image_dir} holds no <city>/<name>{IMAGE_SUFFIX} images; check --data-root.")
    lonely_image = sorted(set(images) - set(masks))
    if lonely_image:
        expected = mask_dir / f"{lonely_image[0]}{MASK_SUFFIX}"
        raise DataError(
            f"{NAME}: image {images[lonely_image[0]]} has no mask {expected}; add the mask or remove the image."
        )
    lonely_mask = sorted(set(masks) - set(images))
    if lonely_mask:
        expected = image_dir / f"{lonely_mask[0]}{IMAGE_SUFFIX}"
        raise DataError(
            f"{NAME}: mask {masks[lonely_mask[0]]} has no image {expected}; add the image or remove the mask."
        )
    return tuple((images[key], masks[key]) for key in sorted(images))


def _folder(path: Path) -> Path:
    if not path.is_dir():
        raise DataError(
            f"{NAME}: folder {path} is missing; --data-root must hold leftImg8bit/ and gtFine/ "
            "with train/ and val/ inside each."
        )
    return path


def _by_frame(folder: Path, suffix: str) -> dict[str, Path]:
    """Files ending in ``suffix`` under ``folder/<city>/``, keyed by ``<city>/<frame name>``."""
    return {
        f"{path.parent.name}/{path.name[: -len(suffix)]}": path
        for path in folder.glob(f"*/*{suffix}")
        if path.is_file()
    }
