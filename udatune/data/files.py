"""Frames read from image and mask files, and the checks every real-data builder runs on them.

A `FileFrames` is a list of ``(image path, mask path or None)`` pairs plus how to turn the files
into the arrays `base.FrameSource` promises: an optional resize (images bilinear, masks nearest,
so a mask never gains an id it did not have) and an optional 256-entry lookup table from the ids
stored on disk to train ids (``IGNORE_INDEX`` = void).

Every problem a user can fix surfaces as one `DataError` paragraph that names the file, never a
PIL traceback. Builders call `load_checked`, which reads every file exactly once: small datasets
are kept in memory as `ArrayFrames` (read and checked in the same pass), large ones are checked
and then handed out lazily.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from udatune.data.base import IGNORE_INDEX, ArrayFrames, FrameSource, as_path, select_labeled
from udatune.errors import DataError

Pair = tuple[Path, Path | None]  # (image, mask); no mask for unlabeled frames

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
# Decoded bytes (image + mask) up to which a split is read into memory once instead of per step.
PRELOAD_BYTES = 1.5e9
# Pixel modes that convert to 8-bit RGB without losing meaning (16-bit and float modes would clip).
_RGB_MODES = {"1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr"}
# Single-channel modes a mask of class ids may be stored in.
_MASK_MODES = {"1", "L", "P", "I", "I;16", "I;16B", "I;16L"}


def identity_lut() -> np.ndarray:
    """A table that keeps every stored id: builders start from it and remap what they need."""
    return np.arange(256, dtype=np.uint8)


@dataclass(frozen=True, eq=False)
class FileFrames:
    """A split stored as files, decoded on every `load` (cheap to pickle to loader workers).

    ``dataset`` only names the data in error messages; ``lut`` travels with the frames so that
    validation and training always map ids with the same table.
    """

    pairs: tuple[Pair, ...]
    size: tuple[int, int] | None = None  # (height, width) to resize to; None keeps native size
    lut: np.ndarray | None = None  # 256 x uint8: stored id -> train id
    dataset: str = "dataset"

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        image, mask, _ = read_frame(self.pairs[index], self.size, self.lut, self.dataset)
        return image, mask

    def subset(self, indices: Sequence[int], with_masks: bool = True) -> "FileFrames":
        pairs = tuple(self.pairs[int(i)] for i in indices)
        if not with_masks:
            pairs = tuple((image, None) for image, _ in pairs)
        return replace(self, pairs=pairs)


@dataclass(frozen=True, eq=False)
class ConcatFrames:
    """Several splits read as one, e.g. the unlabeled rest of train plus an extra folder."""

    parts: tuple[FrameSource, ...]

    def __len__(self) -> int:
        return sum(len(part) for part in self.parts)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        if index < 0:
            index += len(self)
        for part in self.parts:
            if 0 <= index < len(part):
                return part.load(index)
            index -= len(part)
        raise IndexError("frame index out of range")


class Checked(NamedTuple):
    """A validated split and the train ids its masks contain (used to infer class sets)."""

    frames: FrameSource
    ids: frozenset[int]


# --------------------------------------------------------------------------- reading one frame


def read_frame(
    pair: Pair,
    size: tuple[int, int] | None,
    lut: np.ndarray | None,
    dataset: str,
    num_classes: int | None = None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Decode one pair into ``(image, mask, stored ids present)``, checking it on the way.

    With ``num_classes`` the mapped ids are checked too. Ids are checked before resizing:
    nearest-neighbour resizing only copies existing values, so the resized mask holds no other ids.
    """
    image_path, mask_path = pair
    picture = _open(image_path, "image", dataset)
    if picture.mode not in _RGB_MODES:
        raise DataError(
            f"{dataset}: image {image_path} has pixel mode {picture.mode}, which does not convert to "
            "8-bit RGB; re-save it as an 8-bit RGB PNG or JPEG."
        )
    native = (picture.height, picture.width)
    image = _resize(picture.convert("RGB"), size, Image.BILINEAR)
    present = np.zeros(256, dtype=bool)
    if mask_path is None:
        return image, None, present
    stored = _read_mask(mask_path, dataset)
    if stored.shape != native:
        raise DataError(
            f"{dataset}: mask {mask_path} is {_hw(stored.shape)} but its image {image_path} is "
            f"{_hw(native)} (height x width); a mask must cover its image pixel for pixel, "
            "so fix or remove the pair."
        )
    present = np.bincount(stored.ravel(), minlength=256).astype(bool)
    if num_classes is not None:
        _check_ids(present, lut, num_classes, mask_path, dataset)
    mapped = stored if lut is None else lut[stored]
    return image, _resize(Image.fromarray(mapped), size, Image.NEAREST), present


def _open(path: Path, what: str, dataset: str) -> Image.Image:
    """Open and fully decode a file, turning every failure into a DataError that names it."""
    try:
        with Image.open(path) as picture:
            picture.load()
            return picture
    except Exception as err:  # PIL raises many kinds (UnidentifiedImageError, OSError, SyntaxError...)
        raise _unreadable(path, what, dataset, err) from None


def _unreadable(path: Path, what: str, dataset: str, err: Exception) -> DataError:
    if not path.is_file():
        return DataError(f"{dataset}: {what} {path} does not exist; restore the file or remove it from the dataset.")
    if isinstance(err, UnidentifiedImageError):
        reason = "not a known image format"
    else:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
    return DataError(
        f"{dataset}: {what} {path} cannot be read as an image ({reason}); the file is truncated "
        "or not an image, so re-export it or remove it from the dataset."
    )


def _read_mask(path: Path, dataset: str) -> np.ndarray:
    """A mask's stored ids as uint8; masks must be one channel of ids, not colours."""
    picture = _open(path, "mask", dataset)
    if picture.mode not in _MASK_MODES:
        raise DataError(
            f"{dataset}: mask {path} has {len(picture.getbands())} channels ({picture.mode}); masks must be "
            "single-channel PNGs of class ids, so convert colour-coded masks to ids first."
        )
    stored = np.asarray(picture)
    if stored.dtype != np.uint8:
        low, top = int(stored.min(initial=0)), int(stored.max(initial=0))
        if low < 0 or top > 255:
            raise DataError(
                f"{dataset}: mask {path} has id {top if top > 255 else low}, outside 0-255; masks must "
                "hold 8-bit class ids, so re-save it as an 8-bit single-channel PNG."
            )
        stored = stored.astype(np.uint8)
    return stored


def _resize(picture: Image.Image, size: tuple[int, int] | None, method: int) -> np.ndarray:
    if size is not None and (picture.height, picture.width) != tuple(size):
        picture = picture.resize((size[1], size[0]), method)
    return np.asarray(picture, dtype=np.uint8)


def _hw(shape: Sequence[int]) -> str:
    return f"{shape[0]}x{shape[1]}"


# --------------------------------------------------------------------------- id checks


def allowed_stored_ids(lut: np.ndarray | None, num_classes: int) -> np.ndarray:
    """Which stored ids (0..255) map to a class or to void."""
    mapped = identity_lut() if lut is None else lut
    return (mapped < num_classes) | (mapped == IGNORE_INDEX)


def _check_ids(present: np.ndarray, lut: np.ndarray | None, num_classes: int, path: Path, dataset: str) -> None:
    bad = np.flatnonzero(present & ~allowed_stored_ids(lut, num_classes))
    if bad.size:
        raise DataError(
            f"{dataset}: mask {path} has id {int(bad[0])}, outside the ids this dataset allows "
            f"({describe_ids(lut, num_classes)}); fix or remove the file."
        )


def describe_ids(lut: np.ndarray | None, num_classes: int) -> str:
    """Stored ids a dataset accepts, as ranges: '0-10 = the 11 classes; 11, 255 = void'."""
    mapped = identity_lut() if lut is None else lut
    classes = np.flatnonzero(mapped < num_classes)
    void = np.flatnonzero(mapped == IGNORE_INDEX)
    return f"{_ranges(classes)} = the {num_classes} classes; {_ranges(void)} = void"


def _ranges(values: np.ndarray) -> str:
    if values.size == 0:
        return "none"
    runs: list[list[int]] = []
    for value in values.tolist():
        if runs and value == runs[-1][1] + 1:
            runs[-1][1] = value
        else:
            runs.append([value, value])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


# --------------------------------------------------------------------------- whole splits


class _Read(NamedTuple):
    images: list[np.ndarray]
    masks: list[np.ndarray | None]
    ids: frozenset[int]  # train ids found in the masks


def _read_all(frames: FileFrames, num_classes: int | None, keep: bool) -> _Read:
    """One pass over the split: decode and check every frame, keeping the arrays if asked."""
    images: list[np.ndarray] = []
    masks: list[np.ndarray | None] = []
    present = np.zeros(256, dtype=bool)
    for pair in frames.pairs:
        image, mask, ids = read_frame(pair, frames.size, frames.lut, frames.dataset, num_classes)
        present |= ids
        if keep:
            images.append(image)
            masks.append(mask)
    stored = np.flatnonzero(present)
    mapped = stored if frames.lut is None else frames.lut[stored]
    return _Read(images, masks, frozenset(mapped.tolist()))


def validate_frames(frames: FileFrames, num_classes: int | None) -> frozenset[int]:
    """Open and check every file of ``frames``; return the train ids found in the masks.

    Checks: each file exists and decodes, images convert to RGB, each listed mask exists, is one
    channel and matches its image's height x width, and (given ``num_classes``) every mapped id is a
    class or void. ``num_classes=None`` skips the id check, for datasets that infer their classes.
    The lookup table and resize are the frames' own, so what is checked is what training reads.
    """
    return _read_all(frames, num_classes, keep=False).ids


def preload(frames: FileFrames, num_classes: int | None = None) -> ArrayFrames:
    """Read every frame once into one `ArrayFrames`, running the checks of `validate_frames`.

    All frames must share one size: pass an image size to resize datasets whose frames differ.
    """
    read = _read_all(frames, num_classes, keep=True)
    stacked = _stack(read)
    if stacked is None:
        odd = next(i for i, image in enumerate(read.images) if image.shape != read.images[0].shape)
        raise DataError(
            f"{frames.dataset}: image {frames.pairs[odd][0]} is {_hw(read.images[odd].shape)} but "
            f"{frames.pairs[0][0]} is {_hw(read.images[0].shape)}; pass an image size (height, width) "
            "so that all frames are resized to one size."
        )
    return stacked


def _stack(read: _Read) -> ArrayFrames | None:
    """The frames as one array, or None when they differ in size (or there are none)."""
    if not read.images or any(image.shape != read.images[0].shape for image in read.images):
        return None
    if any(mask is None for mask in read.masks):
        return ArrayFrames(np.stack(read.images))
    return ArrayFrames(np.stack(read.images), np.stack(read.masks))


def load_checked(frames: FileFrames, num_classes: int | None, max_bytes: float = PRELOAD_BYTES) -> Checked:
    """Validate every file in one pass; keep the split in memory when it fits and shares one size.

    Reading a small dataset (CamVid: ~60 MB decoded) once saves decoding PNGs at every step;
    larger ones are checked and then read lazily. Frames of differing sizes (no image size
    given) cannot be stacked, so they too are handed out lazily, after the same checks.
    """
    keep = decoded_bytes(frames) <= max_bytes
    read = _read_all(frames, num_classes, keep=keep)
    stacked = _stack(read) if keep else None
    return Checked(frames if stacked is None else stacked, read.ids)


def decoded_bytes(frames: FileFrames) -> int:
    """Memory the split takes decoded (RGB + mask), estimated from the first frame's size."""
    if not frames.pairs:
        return 0
    height, width = frames.size or _header_size(frames.pairs[0][0], frames.dataset)
    return len(frames) * height * width * 4


def _header_size(path: Path, dataset: str) -> tuple[int, int]:
    """An image's (height, width) from its header, without decoding the pixels."""
    try:
        with Image.open(path) as picture:
            return picture.height, picture.width
    except Exception as err:
        raise _unreadable(path, "image", dataset, err) from None


def file_bytes(frames: FileFrames) -> int:
    """Bytes on disk: part of a dataset's identity, so an edited dataset changes its fingerprint."""
    return sum(path.stat().st_size for pair in frames.pairs for path in pair if path is not None)


# --------------------------------------------------------------------------- listing folders


def list_images(folder: Path, dataset: str) -> list[Path]:
    """Image files of a folder, sorted by name; hidden files are skipped, anything else is an error."""
    files = sorted(path for path in folder.iterdir() if path.is_file() and not path.name.startswith("."))
    strange = next((path for path in files if path.suffix.lower() not in IMAGE_SUFFIXES), None)
    if strange is not None:
        raise DataError(
            f"{dataset}: {strange} is not an image udatune reads ({', '.join(IMAGE_SUFFIXES)}); "
            f"move it out of {folder}."
        )
    return files


def unlabeled_images(folder: Path, size: tuple[int, int] | None, dataset: str) -> FileFrames:
    """Every image in ``folder`` as frames without masks; an empty folder is an error."""
    images = list_images(folder, dataset)
    if not images:
        raise DataError(f"{dataset}: the unlabeled folder {folder} holds no images; add images or remove it.")
    return FileFrames(tuple((path, None) for path in images), size=size, dataset=dataset)


def unlabeled_folder(root: str | None, size: tuple[int, int] | None, dataset: str) -> FileFrames | None:
    """The images of ``--unlabeled-root``, or None when the option is not set."""
    if root is None:
        return None
    return unlabeled_images(as_path(root, "--unlabeled-root").resolve(), size, dataset)


def split_train(train: ArrayFrames | FileFrames, labeled: str, seed: int) -> tuple[FrameSource, FrameSource]:
    """Labeled subset and the unlabeled rest (masks dropped) of a preloaded or lazy train split."""
    chosen, rest = select_labeled(len(train), labeled, seed)
    return train.subset(chosen), train.subset(rest, with_masks=False)


def with_extras(unlabeled: FrameSource, *extras: FrameSource | None) -> FrameSource:
    """The unlabeled rest of train plus any extra folders of images (None: folder not given)."""
    given = tuple(extra for extra in extras if extra is not None)
    return ConcatFrames((unlabeled, *given)) if given else unlabeled


def dataset_identity(name: str, root, cfg, frames: dict, extra) -> dict:
    """What identifies a file-based dataset for sweep fingerprints: where it is, how it is
    split and resized, and how many frames and bytes each split holds."""
    return {
        "dataset": name,
        "root": str(root),
        "image_size": cfg.image_size,
        "labeled": cfg.labeled,
        "split_seed": cfg.split_seed,
        "frames": {split: len(split_frames) for split, split_frames in frames.items()},
        "bytes": sum(file_bytes(split_frames) for split_frames in frames.values()),
        "unlabeled_root": cfg.unlabeled_root,
        "unlabeled_extra": 0 if extra is None else len(extra),
    }
