"""What the loaders hand the trainer: uint8 on the wire, int64 labels on the device."""

import numpy as np
import torch

from udatune.data.base import IGNORE_INDEX, ArrayFrames
from udatune.data.loader import IMAGENET_MEAN, IMAGENET_STD, EvalSet, LabeledSet, WeakAugment, imagenet_stats, normalize
from udatune.train.step import to_device


def frames() -> ArrayFrames:
    rng = np.random.default_rng(0)
    masks = rng.integers(0, 5, (3, 8, 10)).astype(np.uint8)
    masks[:, 0] = IGNORE_INDEX
    return ArrayFrames(rng.integers(0, 256, (3, 8, 10, 3), dtype=np.uint8), masks)


def test_masks_travel_as_uint8_and_reach_the_device_as_int64_with_the_same_ids():
    source = frames()
    for sample in (LabeledSet(source, WeakAugment(flip=False))[(1, 7)], EvalSet(source)[1]):
        assert sample["mask"].dtype == torch.uint8 and sample["image"].dtype == torch.uint8
        moved = to_device({k: v[None] for k, v in sample.items()}, torch.device("cpu"))
        assert moved["mask"].dtype == torch.int64
        assert torch.equal(moved["mask"][0], torch.from_numpy(source.masks[1].astype(np.int64)))


def test_normalize_is_the_imagenet_formula_with_its_constants_made_once_per_device():
    images = torch.randint(0, 256, (2, 3, 4, 5), dtype=torch.uint8)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    assert torch.equal(normalize(images), (images.float() / 255.0 - mean) / std)
    assert imagenet_stats(torch.device("cpu"))[0] is imagenet_stats(torch.device("cpu"))[0]
