"""CamVid (SegNet layout): tiny datasets written in tmp_path, plus one check on the real copy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from udatune.config import DataConfig
from udatune.data.base import ArrayFrames
from udatune.data.camvid import CLASSES, build_camvid
from udatune.data.registry import DATASETS
from udatune.errors import ConfigError, DataError

REAL_CAMVID = Path(__file__).resolve().parents[3] / "shared/datasets/camvid"
SPLITS = {"train": 6, "val": 3}


def write_camvid(root: Path, png, lists: str | None = "relative", splits: dict[str, int] = SPLITS) -> Path:
    """SegNet layout; ``lists`` is 'relative' (as shipped), 'segnet' (absolute-looking) or None."""
    for split, count in splits.items():
        lines = []
        for i in range(count):
            name = f"{split}_{i:03d}.png"
            png.rgb(root / split / name, seed=i)
            png.mask(root / f"{split}annot" / name, [i % 11, 11, 3])
            prefix = "/SegNet/CamVid/" if lists == "segnet" else ""
            lines.append(f"{prefix}{split}/{name} {prefix}{split}annot/{name}")
        if lists is not None:
            (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root


def camvid(root: Path, **options) -> DataConfig:
    return DataConfig(**{"dataset": "camvid", "root": str(root), "labeled": "2", **options})


def test_registered_under_its_name():
    assert DATASETS["camvid"] is build_camvid


@pytest.mark.parametrize("lists", ["relative", "segnet", None])
def test_loads_every_list_style_with_void_mapped_to_ignore(lists, tmp_path, png):
    data = build_camvid(camvid(write_camvid(tmp_path, png, lists), labeled="2"))

    assert data.classes == CLASSES and data.num_classes == 11
    assert (len(data.labeled), len(data.unlabeled), len(data.val)) == (2, 4, 3)
    assert data.test is None and not data.has_test
    image, mask = data.labeled.load(0)
    assert image.dtype == np.uint8 and image.shape == (12, 16, 3)
    assert mask.dtype == np.uint8 and mask.shape == (12, 16)
    assert 11 not in mask and 255 in mask and 3 in mask
    assert data.unlabeled.load(0)[1] is None
    assert isinstance(data.val, ArrayFrames)  # small: preloaded once


def test_labeled_count_fraction_and_all(tmp_path, png):
    root = write_camvid(tmp_path, png)
    sizes = {
        labeled: (len(d.labeled), len(d.unlabeled))
        for labeled in ("1", "0.5", "all")
        for d in [build_camvid(camvid(root, labeled=labeled))]
    }
    assert sizes == {"1": (1, 5), "0.5": (3, 3), "all": (6, 0)}
    with pytest.raises(ConfigError):
        build_camvid(camvid(root, labeled="7"))


def test_split_seed_picks_the_labeled_frames(tmp_path, png):
    root = write_camvid(tmp_path, png)

    def labeled_images(seed):
        data = build_camvid(camvid(root, labeled="2", split_seed=seed))
        return [data.labeled.load(i)[0].tobytes() for i in range(2)]

    assert labeled_images(0) == labeled_images(0)
    assert any(labeled_images(0) != labeled_images(seed) for seed in (1, 2, 3))


def test_unlabeled_root_images_join_the_unlabeled_pool(tmp_path, png):
    root = write_camvid(tmp_path / "camvid", png)
    extra = tmp_path / "extra"
    for i in range(5):
        png.rgb(extra / f"x{i}.jpg", seed=100 + i)
    data = build_camvid(camvid(root, labeled="2", unlabeled_root=str(extra)))
    assert len(data.unlabeled) == 4 + 5
    image, mask = data.unlabeled.load(8)
    assert mask is None and image.shape == (12, 16, 3)
    assert data.identity["unlabeled_extra"] == 5


def test_image_size_resizes_and_keeps_ids_valid(tmp_path, png):
    data = build_camvid(camvid(write_camvid(tmp_path, png), labeled="all", image_size=(5, 7)))
    masks = np.stack([data.labeled.load(i)[1] for i in range(len(data.labeled))])
    assert data.labeled.load(0)[0].shape == (5, 7, 3) and masks.shape == (6, 5, 7)
    assert set(np.unique(masks).tolist()) <= set(range(11)) | {255}


def test_test_split_is_loaded_when_present(tmp_path, png):
    data = build_camvid(camvid(write_camvid(tmp_path, png, splits={**SPLITS, "test": 2})))
    assert len(data.test) == 2 and data.test.load(1)[1].shape == (12, 16) and data.has_test
    assert data.identity["frames"] == {"train": 6, "val": 3, "test": 2}


def test_identity_changes_when_the_data_changes(tmp_path, png):
    root = write_camvid(tmp_path, png)
    before = build_camvid(camvid(root)).fingerprint()
    assert build_camvid(camvid(root)).fingerprint() == before
    assert build_camvid(camvid(root, labeled="3")).fingerprint() != before
    (root / "train.txt").write_text("\n".join((root / "train.txt").read_text().splitlines()[:-1]))
    assert build_camvid(camvid(root)).fingerprint() != before


# --- bad inputs: one DataError naming the file ------------------------------------------------


def _missing_root(root, png):
    return str(root)


def _missing_split_folder(root, png):
    write_camvid(root, png, lists=None)
    for path in (root / "valannot").iterdir():
        path.unlink()
    (root / "valannot").rmdir()
    return "valannot"


def _image_without_mask(root, png):
    write_camvid(root, png, lists=None)
    png.rgb(root / "train" / "lonely.png")
    return "lonely.png"


def _mask_without_image(root, png):
    write_camvid(root, png, lists=None)
    png.mask(root / "trainannot" / "orphan.png", [1])
    return "orphan.png"


def _list_names_missing_mask(root, png):
    write_camvid(root, png)
    (root / "trainannot" / "train_002.png").unlink()
    return "train_002.png"


def _size_mismatch(root, png):
    write_camvid(root, png)
    png.mask(root / "valannot" / "val_001.png", [1], 10, 16)
    return "val_001.png"


def _id_outside(root, png):
    write_camvid(root, png)
    png.mask(root / "trainannot" / "train_004.png", [1, 14])
    return "train_004.png has id 14"


def _unreadable(root, png):
    write_camvid(root, png)
    png.truncated(root / "train" / "train_003.png")
    return "train_003.png"


def _empty_split(root, png):
    write_camvid(root, png)
    (root / "val.txt").write_text("\n")
    return "val split"


def _malformed_line(root, png):
    write_camvid(root, png)
    (root / "train.txt").write_text("train/train_000.png\n")
    return "train.txt"


def _missing_unlabeled_root(root, png):
    write_camvid(root, png)
    return "--unlabeled-root"


BAD = [
    _missing_root, _missing_split_folder, _image_without_mask, _mask_without_image, _list_names_missing_mask,
    _size_mismatch, _id_outside, _unreadable, _empty_split, _malformed_line, _missing_unlabeled_root,
]  # fmt: skip


@pytest.mark.parametrize("breakage", BAD, ids=lambda f: f.__name__.strip("_"))
def test_bad_input_raises_one_data_error_naming_the_file(breakage, tmp_path, png):
    root = tmp_path / "camvid"
    culprit = breakage(root, png)
    extra = str(tmp_path / "no_such_folder") if breakage is _missing_unlabeled_root else None
    with pytest.raises(DataError) as caught:
        build_camvid(camvid(root, unlabeled_root=extra))
    message = str(caught.value)
    assert culprit in message
    assert "\n" not in message


# --- the real dataset ------------------------------------------------------------------------


@pytest.mark.skipif(not REAL_CAMVID.is_dir(), reason=f"real CamVid not found at {REAL_CAMVID}")
def test_real_camvid():
    data = build_camvid(camvid(REAL_CAMVID, labeled="24"))

    assert data.identity["frames"] == {"train": 367, "val": 101}
    assert (len(data.labeled), len(data.unlabeled), len(data.val)) == (24, 343, 101)
    assert data.test is None
    assert data.val.images.shape == (101, 180, 240, 3) and data.val.images.dtype == np.uint8
    ids = set(np.unique(data.val.masks).tolist()) | set(np.unique(data.labeled.masks).tolist())
    assert ids <= set(range(11)) | {255} and 255 in ids
    assert data.unlabeled.masks is None
