"""Any dataset laid out as folders of images and masks matched by file stem.

    root/images/<stem>.{png,jpg,jpeg,bmp,tif,tiff}   root/masks/<stem>.png   (required)
    root/unlabeled/<any image>                       (optional) extra unlabeled images
    root/val/images/ + root/val/masks/               (optional) the validation split
    root/classes.txt                                 (optional) one class name per line

Masks are single-channel PNGs of class ids (JPEG would blur the ids); 255 is void. Without
classes.txt the classes are ``class_0 .. class_<largest id found>``.

Without root/val, 20% of the labeled frames (at least one) are held out as val, drawn with
``split_seed``; so a different split seed also changes the val frames, and runs are comparable
only between equal split seeds (which is how sweeps pair trials anyway). The labeled subset is then
drawn from the remaining frames.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from udatune.config import DataConfig
from udatune.data.base import IGNORE_INDEX, SegmentationData, as_path
from udatune.data.files import (
    FileFrames,
    Pair,
    file_bytes,
    list_images,
    load_checked,
    split_train,
    unlabeled_folder,
    unlabeled_images,
    with_extras,
)
from udatune.data.registry import register_dataset
from udatune.errors import DataError

NAME = "Folder dataset"
VAL_FRACTION = 0.2


@register_dataset("folder")
def build_folder(cfg: DataConfig) -> SegmentationData:
    """Read and check every file once; infer classes when there is no classes.txt."""
    root = as_path(cfg.root).resolve()
    named = read_classes(root / "classes.txt")
    num_classes = None if named is None else len(named)
    train_files = labeled_files(root, cfg.image_size)
    val_files = labeled_files(root / "val", cfg.image_size) if (root / "val").is_dir() else None
    train = load_checked(train_files, num_classes)
    val = None if val_files is None else load_checked(val_files, num_classes)
    classes = named or inferred_classes(train.ids | (val.ids if val else frozenset()), root)
    if val is None:
        held_out, kept = hold_out(len(train.frames), cfg.split_seed, root)
        val_frames, train_frames = train.frames.subset(held_out), train.frames.subset(kept)
    else:
        val_frames, train_frames = val.frames, train.frames
    labeled, unlabeled = split_train(train_frames, cfg.labeled, cfg.split_seed)
    extras = [
        load_checked(files, None).frames
        for files in (own_unlabeled(root, cfg.image_size), unlabeled_folder(cfg.unlabeled_root, cfg.image_size, NAME))
        if files is not None
    ]
    identity = {
        "dataset": "folder",
        "root": str(root),
        "image_size": cfg.image_size,
        "labeled": cfg.labeled,
        "split_seed": cfg.split_seed,
        "classes": classes,
        "frames": {"train": len(train_frames), "val": len(val_frames)},
        "bytes": sum(file_bytes(files) for files in (train_files, val_files) if files is not None),
        "unlabeled_root": cfg.unlabeled_root,
        "unlabeled_extra": sum(len(extra) for extra in extras),
    }
    return SegmentationData("folder", classes, labeled, with_extras(unlabeled, *extras), val_frames, None, identity)


def labeled_files(folder: Path, size: tuple[int, int] | None) -> FileFrames:
    """The pairs of ``folder/images`` and ``folder/masks`` (the dataset root, or root/val)."""
    return FileFrames(pair_by_stem(folder / "images", folder / "masks"), size, dataset=NAME)


def read_classes(path: Path) -> tuple[str, ...] | None:
    """Class names from classes.txt (one per line, blank lines skipped), or None if absent."""
    if not path.is_file():
        return None
    names = tuple(line.strip() for line in path.read_text().splitlines() if line.strip())
    if not names:
        raise DataError(f"{NAME}: {path} lists no classes; write one class name per line, or delete it to infer them.")
    if len(names) >= IGNORE_INDEX:
        raise DataError(f"{NAME}: {path} lists {len(names)} classes; at most {IGNORE_INDEX} fit (id 255 is void).")
    return names


def inferred_classes(ids: frozenset[int], root: Path) -> tuple[str, ...]:
    """``class_0 .. class_<max id>`` from the ids found in the masks (void ignored)."""
    found = ids - {IGNORE_INDEX}
    if not found:
        raise DataError(
            f"{NAME}: every mask under {root} is void (255); masks must hold class ids 0, 1, ... "
            "(add a classes.txt or fix the masks)."
        )
    return tuple(f"class_{i}" for i in range(max(found) + 1))


def pair_by_stem(images_dir: Path, masks_dir: Path) -> tuple[Pair, ...]:
    """Match ``images_dir/<stem>.<image ext>`` with ``masks_dir/<stem>.png``; unpaired files are errors."""
    images = _by_stem(images_dir)
    masks = _by_stem(masks_dir)
    not_png = next((path for path in masks.values() if path.suffix.lower() != ".png"), None)
    if not_png is not None:
        raise DataError(
            f"{NAME}: mask {not_png} is not a PNG; masks must be lossless single-channel PNGs of class ids."
        )
    if not images:
        raise DataError(f"{NAME}: {images_dir} holds no images; add images with masks of the same name in {masks_dir}.")
    lonely_image = sorted(set(images) - set(masks))
    if lonely_image:
        raise DataError(
            f"{NAME}: image {images[lonely_image[0]]} has no mask {masks_dir / lonely_image[0]}.png; "
            "add the mask or move the image to unlabeled/."
        )
    lonely_mask = sorted(set(masks) - set(images))
    if lonely_mask:
        raise DataError(
            f"{NAME}: mask {masks[lonely_mask[0]]} has no image in {images_dir}; add the image or remove the mask."
        )
    return tuple((images[stem], masks[stem]) for stem in sorted(images))


def _by_stem(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise DataError(
            f"{NAME}: folder {folder} is missing; --data-root must hold images/ and masks/ "
            "(and optionally val/images/, val/masks/, unlabeled/, classes.txt)."
        )
    found: dict[str, Path] = {}
    for path in list_images(folder, NAME):
        if path.stem in found:
            raise DataError(f"{NAME}: {path} and {found[path.stem]} share the name {path.stem!r}; keep one of them.")
        found[path.stem] = path
    return found


def hold_out(total: int, seed: int, root: Path) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (val, train) indices: ``VAL_FRACTION`` of the frames, at least one, drawn with ``seed``."""
    if total < 2:
        raise DataError(
            f"{NAME}: {root / 'images'} has {total} frame; add frames or a val/ folder so that val is not empty."
        )
    count = max(1, int(round(VAL_FRACTION * total)))
    # A stream of its own, so the held-out draw does not mirror select_labeled's draw for the same seed.
    order = np.random.default_rng((seed, 1)).permutation(total)
    return np.sort(order[:count]), np.sort(order[count:])


def own_unlabeled(root: Path, size: tuple[int, int] | None) -> FileFrames | None:
    """The images of root/unlabeled/, or None when the dataset has no such folder."""
    folder = root / "unlabeled"
    return unlabeled_images(folder, size, NAME) if folder.is_dir() else None
