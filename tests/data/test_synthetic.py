"""The synthetic road-scene generator: determinism, shapes, class coverage, cache, splits."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from udatune.config import DataConfig
from udatune.data import synthetic
from udatune.data.base import IGNORE_INDEX, select_labeled
from udatune.data.registry import DATASETS
from udatune.data.synthetic import CLASSES, SyntheticSpec, build_synthetic, cache_file, generate, render_frame
from udatune.errors import ConfigError

SMALL = SyntheticSpec(height=40, width=56, train=50, val=4, test=3)
THIN = ("pole", "pedestrian", "sign", "fence")


@pytest.fixture(scope="module")
def small_splits(tmp_path_factory) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return generate(SMALL, tmp_path_factory.mktemp("small"))


def _frames_equal(a: dict, b: dict) -> bool:
    return all(np.array_equal(x, y) for name in a for x, y in zip(a[name], b[name]))


def test_class_names_are_the_ten_road_classes_in_order():
    assert CLASSES == (
        "sky", "building", "road", "sidewalk", "vegetation", "car", "pedestrian", "pole", "sign", "fence",
    )


def test_same_spec_renders_identical_frames_and_another_seed_does_not(tmp_path, small_splits):
    again = generate(SMALL, tmp_path / "again")  # a fresh cache dir, so it renders anew
    assert _frames_equal(small_splits, again)
    other = generate(dataclasses.replace(SMALL, seed=1), tmp_path / "other")
    assert not np.array_equal(small_splits["train"][0], other["train"][0])
    assert not np.array_equal(small_splits["train"][1], other["train"][1])


def test_frame_depends_only_on_seed_split_and_index(tmp_path, small_splits):
    rng = np.random.default_rng(np.random.SeedSequence([SMALL.seed, 1, 2]))  # val (split 1), frame 2
    image, mask = render_frame(SMALL, rng)
    assert np.array_equal(image, small_splits["val"][0][2])
    assert np.array_equal(mask, small_splits["val"][1][2])
    # Resizing another split leaves these frames alone, and splits never share a scene.
    fewer = generate(dataclasses.replace(SMALL, train=5), tmp_path)
    assert np.array_equal(fewer["val"][0], small_splits["val"][0])
    assert not np.array_equal(small_splits["train"][0][0], small_splits["val"][0][0])


@pytest.mark.parametrize("size", [(32, 32), (48, 80), (63, 101), (96, 128)])
def test_frames_have_the_requested_size_dtype_and_valid_ids(tmp_path, size):
    spec = SyntheticSpec(height=size[0], width=size[1], train=3, val=2, test=1)
    splits = generate(spec, tmp_path)
    for name, count in (("train", 3), ("val", 2), ("test", 1)):
        images, masks = splits[name]
        assert images.shape == (count, *size, 3) and images.dtype == np.uint8
        assert masks.shape == (count, *size) and masks.dtype == np.uint8
        assert set(np.unique(masks)) <= set(range(len(CLASSES))) | {IGNORE_INDEX}
        assert images.std() > 10  # a scene, not a blank canvas


def test_sizes_below_32_are_refused():
    with pytest.raises(ConfigError, match="at least 32x32"):
        SyntheticSpec(height=31, width=96)


def test_every_class_appears_and_thin_classes_appear_in_most_frames(small_splits):
    masks = small_splits["train"][1]
    present = np.stack([(masks == c).any(axis=(1, 2)) for c in range(len(CLASSES))], 1)  # frames x classes
    assert present.any(axis=0).all(), [c for c, p in zip(CLASSES, present.any(axis=0)) if not p]
    for name in THIN:
        assert present[:, CLASSES.index(name)].mean() >= 0.5, name


def test_class_colours_vary_between_frames(small_splits):
    """A class's colour changes from frame to frame, so colour alone does not identify it."""
    images, masks = small_splits["train"]
    for name in ("building", "car", "road"):
        c = CLASSES.index(name)
        means = np.array([img[m == c].mean(axis=0) for img, m in zip(images, masks) if (m == c).sum() > 20])
        assert len(means) >= 10, name
        assert means.std(axis=0).max() > 15, name


def test_photometric_knobs_change_pixels_but_not_labels():
    clean = dataclasses.replace(
        SMALL, brightness=(1.0, 1.0), shading=0.0, shadows=0.0, colour_cast=0.0, haze=0.0, noise=0.0, blur=0.0
    )
    seed = np.random.SeedSequence([0, 0, 7])
    image, mask = render_frame(SMALL, np.random.default_rng(seed))
    clean_image, clean_mask = render_frame(clean, np.random.default_rng(seed))
    assert np.array_equal(mask, clean_mask)
    assert np.abs(image.astype(int) - clean_image.astype(int)).mean() > 5


def test_second_call_loads_the_cache_without_rendering(tmp_path, monkeypatch):
    spec = dataclasses.replace(SMALL, train=4, val=2, test=2)
    first = generate(spec, tmp_path)
    path = cache_file(spec, tmp_path)
    assert path.is_file() and path.suffix == ".npz" and f"v{synthetic.GENERATOR_VERSION}" in path.name
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind

    def must_not_render(*args, **kwargs):
        raise AssertionError("render_frame called although the frames are cached")

    monkeypatch.setattr(synthetic, "render_frame", must_not_render)
    assert _frames_equal(first, generate(spec, tmp_path))
    assert cache_file(dataclasses.replace(spec, seed=1), tmp_path) != path
    assert cache_file(dataclasses.replace(spec, noise=0.0), tmp_path) != path


def test_corrupt_cache_file_is_rendered_again(tmp_path):
    spec = dataclasses.replace(SMALL, train=2, val=1, test=1)
    fresh = generate(spec, tmp_path / "fresh")
    path = cache_file(spec, tmp_path)
    path.write_bytes(b"not a zip file")
    assert _frames_equal(fresh, generate(spec, tmp_path))
    assert _frames_equal(fresh, generate(spec, tmp_path))  # and the repaired file loads


def test_cache_dir_comes_from_udatune_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("UDATUNE_CACHE", str(tmp_path))
    assert cache_file(SMALL).parent == tmp_path / "synthetic"
    monkeypatch.delenv("UDATUNE_CACHE")
    assert cache_file(SMALL).parent == (tmp_path.home() / ".cache" / "udatune" / "synthetic")


# --- the registered dataset, on the real default splits (rendered once, at 32x32) ----------


@pytest.fixture(scope="module")
def cache_env(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("UDATUNE_CACHE", str(tmp_path_factory.mktemp("udatune-cache")))
        yield


def _build(labeled: str = "16", split_seed: int = 0):
    return build_synthetic(DataConfig(labeled=labeled, split_seed=split_seed, image_size=(32, 32)))


def test_synthetic_is_registered():
    assert DATASETS["synthetic"] is build_synthetic


def test_default_split_sizes(cache_env):
    data = _build()
    assert (len(data.labeled), len(data.unlabeled), len(data.val), len(data.test)) == (16, 500, 100, 100)
    assert data.classes == CLASSES and data.num_classes == 10
    image, mask = data.labeled.load(0)
    assert image.shape == (32, 32, 3) and mask.shape == (32, 32)
    assert data.unlabeled.load(0)[1] is None
    assert data.val.load(0)[1] is not None and data.test.load(99)[1] is not None


def test_labeled_and_unlabeled_frames_partition_the_train_split(cache_env):
    data = _build()
    train_images, train_masks = generate(SyntheticSpec(height=32, width=32))["train"]
    labeled, unlabeled = select_labeled(len(train_images), "16", 0)
    assert not set(labeled) & set(unlabeled) and len(labeled) + len(unlabeled) == len(train_images)
    assert np.array_equal(data.labeled.images, train_images[labeled])
    assert np.array_equal(data.labeled.masks, train_masks[labeled])
    assert np.array_equal(data.unlabeled.images, train_images[unlabeled])
    labeled_frames = {img.tobytes() for img in data.labeled.images}
    assert not labeled_frames & {img.tobytes() for img in data.unlabeled.images}


def test_split_seed_picks_the_labeled_frames(cache_env):
    first, again, other = _build(split_seed=3), _build(split_seed=3), _build(split_seed=4)
    assert np.array_equal(first.labeled.images, again.labeled.images)
    assert not np.array_equal(first.labeled.images, other.labeled.images)
    assert first.identity["split_seed"] == 3 and first.identity["generator"] == synthetic.GENERATOR_VERSION
    assert first.identity["height"] == 32 and first.identity["labeled"] == "16"
    assert first.fingerprint() == again.fingerprint() != other.fingerprint()


def test_all_labeled_is_the_oracle(cache_env):
    data = _build(labeled="all")
    assert (len(data.labeled), len(data.unlabeled)) == (516, 0)


def test_image_size_defaults_to_64x96(monkeypatch):
    seen = []

    def fake_generate(spec, cache_dir=None):  # records the spec; the pixels do not matter here
        seen.append(spec)
        def blank(n: int) -> tuple[np.ndarray, np.ndarray]:
            return np.zeros((n, spec.height, spec.width, 3), np.uint8), np.zeros((n, spec.height, spec.width), np.uint8)

        return {"train": blank(spec.train), "val": blank(spec.val), "test": blank(spec.test)}

    monkeypatch.setattr(synthetic, "generate", fake_generate)
    data = build_synthetic(DataConfig())
    assert (seen[0].height, seen[0].width) == (64, 96)
    assert data.identity["width"] == 96 and len(data.labeled) == 16


def test_unlabeled_root_is_refused():
    with pytest.raises(ConfigError, match="own unlabeled pool"):
        build_synthetic(DataConfig(unlabeled_root="/some/folder"))
