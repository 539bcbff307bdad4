"""Batches for the trainer: weak views, strong views and labels as uint8 tensors.

Randomness is drawn per sample from a seed that the sampler hands out with the index, so a
run is reproducible whatever the number of loader workers, and a run resumed at step ``s``
sees exactly the batches it would have seen (the sampler just starts ``s`` batches in).

Everything stays uint8 until it reaches the device: a quarter of the bytes to pin and copy,
and photometric ops in the workers work on uint8 as albumentations expects.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from udatune.data.base import IGNORE_INDEX, FrameSource

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class WeakAugment:
    """The teacher's view: horizontal flip and, optionally, a random crop.

    Applied jointly to image and mask so the label can never drift from the image.
    """

    crop: tuple[int, int] | None = None
    flip: bool = True

    def __call__(
        self, image: np.ndarray, mask: np.ndarray | None, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray | None]:
        if self.crop is not None:
            image, mask = random_crop(image, mask, self.crop, rng)
        if self.flip and rng.random() < 0.5:
            image = image[:, ::-1]
            mask = None if mask is None else mask[:, ::-1]
        return np.ascontiguousarray(image), None if mask is None else np.ascontiguousarray(mask)


def random_crop(
    image: np.ndarray, mask: np.ndarray | None, size: tuple[int, int], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None]:
    """Crop to ``size``; frames smaller than the crop are padded (black image, ignore mask)."""
    ch, cw = size
    h, w = image.shape[:2]
    if h < ch or w < cw:
        ph, pw = max(ch - h, 0), max(cw - w, 0)
        image = np.pad(image, ((0, ph), (0, pw), (0, 0)))
        if mask is not None:
            mask = np.pad(mask, ((0, ph), (0, pw)), constant_values=IGNORE_INDEX)
        h, w = image.shape[:2]
    y = int(rng.integers(0, h - ch + 1))
    x = int(rng.integers(0, w - cw + 1))
    image = image[y : y + ch, x : x + cw]
    mask = None if mask is None else mask[y : y + ch, x : x + cw]
    return image, mask


def to_chw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


def to_mask(mask: np.ndarray) -> torch.Tensor:
    """Label ids as uint8 (class ids < 255, `IGNORE_INDEX` = 255): an eighth of int64's bytes to
    pin and copy; `to_device` makes them int64 on the device."""
    return torch.from_numpy(np.ascontiguousarray(mask, dtype=np.uint8))


class LabeledSet(Dataset):
    def __init__(self, frames: FrameSource, weak: WeakAugment) -> None:
        self.frames, self.weak = frames, weak

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, item: tuple[int, int]) -> dict[str, torch.Tensor]:
        index, seed = item
        image, mask = self.frames.load(index)
        image, mask = self.weak(image, mask, np.random.default_rng(seed))
        return {"image": to_chw(image), "mask": to_mask(mask)}


class UnlabeledSet(Dataset):
    """Yields the weak view (teacher), the strong view (student) and the strong view's geometry.

    The strong view is the policy applied on top of the weak view, so the two differ only by
    the policy: photometric ops are baked into ``strong``; geometric ops and CutMix come back
    as data (``affine``, ``box``) and are applied on the device to the student's input and to
    the teacher's prediction alike.
    """

    def __init__(self, frames: FrameSource, weak: WeakAugment, policy) -> None:
        self.frames, self.weak, self.policy = frames, weak, policy

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, item: tuple[int, int]) -> dict[str, torch.Tensor]:
        index, seed = item
        rng = np.random.default_rng(seed)
        image, _ = self.frames.load(index)
        weak, _ = self.weak(image, None, rng)
        view = self.policy.apply(weak, rng)
        return {
            "weak": to_chw(weak),
            "strong": to_chw(view.image),
            "affine": torch.from_numpy(np.asarray(view.affine, dtype=np.float32)),
            "box": torch.from_numpy(np.asarray(view.box, dtype=np.float32)),
        }


class EvalSet(Dataset):
    def __init__(self, frames: FrameSource) -> None:
        self.frames = frames

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image, mask = self.frames.load(index)
        return {"image": to_chw(image), "mask": to_mask(mask)}


class SeededSampler(Sampler):
    """An endless stream of ``(index, sample_seed)``: shuffled epochs, seeded by (seed, epoch).

    ``start`` skips that many samples, which is how a resumed run picks up where it stopped.
    """

    def __init__(self, size: int, seed: int, start: int = 0) -> None:
        self.size, self.seed, self.start = size, seed, start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, offset = divmod(self.start, self.size)
        while True:
            order = np.random.default_rng([self.seed, epoch]).permutation(self.size)
            for position in range(offset, self.size):
                sample_seed = hash_seed(self.seed, epoch, position)
                yield int(order[position]), sample_seed
            epoch, offset = epoch + 1, 0


def hash_seed(*parts: int) -> int:
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0])


def infinite_loader(
    dataset: Dataset, batch_size: int, seed: int, start_batch: int, num_workers: int, pin: bool
) -> Iterator[dict[str, torch.Tensor]]:
    sampler = SeededSampler(len(dataset), seed, start=start_batch * batch_size)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=pin,
        drop_last=True,
        persistent_workers=num_workers > 0,
        prefetch_factor=4 if num_workers > 0 else None,
    )
    return iter(loader)


def eval_loader(
    frames: FrameSource, batch_size: int, num_workers: int, pin: bool, shard: tuple[int, int] = (0, 1)
) -> DataLoader:
    """Every frame once, in order; ``shard`` = (rank, world): only frames rank, rank + world, …
    (DDP ranks split the split and sum their confusion matrices). Workers are kept between
    evaluations: the loader is built once per run and read at every evaluation."""
    rank, world = shard
    dataset = EvalSet(frames) if world == 1 else Subset(EvalSet(frames), range(rank, len(frames), world))
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, pin_memory=pin,
        persistent_workers=num_workers > 0,
    )


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 B x 3 x H x W on any device -> float, ImageNet-normalised, in the channels-last
    layout the models are kept in (`udatune.train.loop.setup_trial`), so that the first
    convolution does not convert it."""
    mean, std = imagenet_stats(images.device)
    return ((images.float() / 255.0 - mean) / std).contiguous(memory_format=torch.channels_last)


@functools.lru_cache(maxsize=8)
def imagenet_stats(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std as 1 x 3 x 1 x 1 tensors on ``device``, made once per device: building
    them from lists at every call copied them to the GPU three times per UDA step."""
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    return mean, std
