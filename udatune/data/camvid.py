"""CamVid in the SegNet layout: 11 road-scene classes, id 11 (Unlabelled) is void.

    root/train/ root/trainannot/ root/val/ root/valannot/ [root/test/ root/testannot/]
    root/train.txt root/val.txt [root/test.txt]   "<image path> <annotation path>" per line

List entries may be relative (``train/a.png``) or the SegNet tutorial's absolute-looking paths
(``/SegNet/CamVid/train/a.png``): only the last two components (folder and file name) are used,
so the lists work wherever the folder was copied. Without a list file, a split pairs the
contents of its two folders by file name.
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
    list_images,
    load_checked,
    split_train,
    unlabeled_folder,
    with_extras,
)
from udatune.data.registry import register_dataset
from udatune.errors import DataError

NAME = "CamVid"
CLASSES = (
    "Sky", "Building", "Pole", "Road", "Pavement", "Tree",
    "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist",
)  # fmt: skip
VOID_ID = 11


def camvid_lut() -> np.ndarray:
    """Stored ids 0-10 are the classes, 11 is void; any other id stays out of range and is reported."""
    lut = identity_lut()
    lut[VOID_ID] = IGNORE_INDEX
    return lut


@register_dataset("camvid")
def build_camvid(cfg: DataConfig) -> SegmentationData:
    """Read, check and split CamVid: labeled subset and unlabeled rest of train, val, optional test."""
    root = as_path(cfg.root).resolve()
    splits = {split: split_pairs(root, split, required=split != "test") for split in ("train", "val", "test")}
    frames = {
        split: FileFrames(pairs, cfg.image_size, camvid_lut(), NAME)
        for split, pairs in splits.items()
        if pairs is not None
    }
    loaded = {split: load_checked(split_frames, len(CLASSES)).frames for split, split_frames in frames.items()}
    labeled, unlabeled = split_train(loaded["train"], cfg.labeled, cfg.split_seed)
    extra_files = unlabeled_folder(cfg.unlabeled_root, cfg.image_size, NAME)
    extra = None if extra_files is None else load_checked(extra_files, None).frames
    identity = dataset_identity("camvid", root, cfg, frames, extra)
    return SegmentationData(
        name="camvid",
        classes=CLASSES,
        labeled=labeled,
        unlabeled=with_extras(unlabeled, extra),
        val=loaded["val"],
        test=loaded.get("test"),
        identity=identity,
    )


def split_pairs(root: Path, split: str, required: bool) -> tuple[Pair, ...] | None:
    """The (image, mask) pairs of one split, from its list file or else its two folders.

    Returns None for an absent optional split (test); raises for an absent required one.
    """
    listing = root / f"{split}.txt"
    if listing.is_file():
        pairs = pairs_from_list(listing, root)
    elif (root / split).is_dir() or required:
        pairs = pairs_from_folders(root / split, root / f"{split}annot")
    else:
        return None
    if not pairs:
        raise DataError(f"{NAME}: the {split} split in {root} has no frames; add frames to it.")
    return pairs


def pairs_from_list(listing: Path, root: Path) -> tuple[Pair, ...]:
    """Parse '<image path> <annotation path>' lines, resolving each path under ``root``."""
    pairs = []
    for number, line in enumerate(listing.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2:
            raise DataError(
                f"{NAME}: line {number} of {listing} is {line.strip()!r}; each line must be "
                "'<image path> <annotation path>'."
            )
        image, mask = (_under(root, field) for field in fields)
        if not image.is_file():
            raise DataError(
                f"{NAME}: image {image} (line {number} of {listing}) does not exist; restore it or remove the line."
            )
        if not mask.is_file():
            raise DataError(
                f"{NAME}: image {image} has no mask: {mask} (line {number} of {listing}) does not exist; "
                "add the mask or remove the line."
            )
        pairs.append((image, mask))
    return tuple(pairs)


def _under(root: Path, listed: str) -> Path:
    """'train/a.png' and '/SegNet/CamVid/train/a.png' both name root/train/a.png."""
    parts = Path(listed).parts[-2:]
    return root.joinpath(*parts)


def pairs_from_folders(images_dir: Path, masks_dir: Path) -> tuple[Pair, ...]:
    """Pair ``images_dir/x.png`` with ``masks_dir/x.png``; any unpaired file is an error."""
    for folder in (images_dir, masks_dir):
        if not folder.is_dir():
            raise DataError(
                f"{NAME}: folder {folder} is missing; the SegNet layout has <split>/ and <split>annot/ "
                "folders (or a <split>.txt list), so point --data-root at the folder that holds them."
            )
    images = {path.name: path for path in list_images(images_dir, NAME)}
    masks = {path.name: path for path in list_images(masks_dir, NAME)}
    lonely_image = sorted(set(images) - set(masks))
    if lonely_image:
        name = lonely_image[0]
        raise DataError(
            f"{NAME}: image {images[name]} has no mask {masks_dir / name}; add the mask or remove the image."
        )
    lonely_mask = sorted(set(masks) - set(images))
    if lonely_mask:
        name = lonely_mask[0]
        raise DataError(
            f"{NAME}: mask {masks[name]} has no image {images_dir / name}; add the image or remove the mask."
        )
    return tuple((images[name], masks[name]) for name in sorted(images))
