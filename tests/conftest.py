"""Shared fixtures. Tests run in importlib mode, so helpers are handed out as fixtures, not imported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


class PngWriter:
    """Writes the small real image files that the data-loader tests read back."""

    def rgb(self, path: Path, height: int = 12, width: int = 16, seed: int = 0) -> Path:
        pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
        return self.save(path, Image.fromarray(pixels))

    def mask(self, path: Path, ids: list[int] | np.ndarray, height: int = 12, width: int = 16) -> Path:
        """A single-channel mask whose columns cycle through ``ids`` (so every id is present)."""
        ids = np.asarray(ids, dtype=np.uint8)
        columns = ids[np.arange(width) % len(ids)]
        return self.save(path, Image.fromarray(np.tile(columns, (height, 1))))

    def garbage(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"this is not a png at all")
        return path

    def truncated(self, path: Path) -> Path:
        """A PNG cut in half: the header parses, decoding the pixels fails."""
        self.rgb(path, 24, 32)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return path

    @staticmethod
    def save(path: Path, picture: Image.Image) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        picture.save(path)
        return path


@pytest.fixture
def png() -> PngWriter:
    return PngWriter()
