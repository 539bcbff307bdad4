"""Datasets by name: each builder turns a `DataConfig` into a validated `SegmentationData`.

Builders validate everything before returning (missing folders, images without masks, size
mismatches, ids outside the class set, unreadable files) and raise `DataError` naming the
file, so a bad dataset fails before any training or cluster work starts.
"""

from __future__ import annotations

from typing import Callable

from udatune.config import DataConfig
from udatune.data.base import SegmentationData
from udatune.errors import ConfigError

DatasetBuilder = Callable[[DataConfig], SegmentationData]
DATASETS: dict[str, DatasetBuilder] = {}


def register_dataset(name: str) -> Callable[[DatasetBuilder], DatasetBuilder]:
    def add(builder: DatasetBuilder) -> DatasetBuilder:
        DATASETS[name] = builder
        return builder

    return add


def _load_builtin() -> None:
    # Importing the modules registers their builders; kept lazy so that importing the
    # registry stays cheap and free of side effects beyond filling DATASETS.
    from udatune.data import camvid, cityscapes, folder, synthetic  # noqa: F401


def dataset_names() -> list[str]:
    _load_builtin()
    return sorted(DATASETS)


def build_data(cfg: DataConfig) -> SegmentationData:
    _load_builtin()
    if cfg.dataset not in DATASETS:
        raise ConfigError(f"--dataset {cfg.dataset!r} is not known; choose one of: {', '.join(sorted(DATASETS))}.")
    return DATASETS[cfg.dataset](cfg)
