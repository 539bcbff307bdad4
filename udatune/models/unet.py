"""A small U-Net, written out so it can be read (and trusted) in one sitting.

Encoder level ``k`` has ``width·2^k`` channels, ``k = 0..depth``. Going down is a 2×2 max-pool
followed by a double conv; going up is a bilinear upsample plus a 1×1 conv that halves the
channels, concatenated with the encoder skip and merged by a double conv. Bilinear upsampling
costs fewer parameters and FLOPs than transposed convolutions and has no checkerboard artefacts.

Odd sizes need no padding: each upsample goes to the exact size of its skip connection, so a
63×101 input gives 63×101 logits. The input must be at least ``2**depth`` pixels per side.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from udatune.config import ModelConfig
from udatune.errors import ConfigError
from udatune.models.registry import register_model


class DoubleConv(nn.Sequential):
    """(3×3 conv → BatchNorm → ReLU) twice; the conv has no bias because BN adds one."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class Up(nn.Module):
    """Upsample to the skip's size, halve the channels, concatenate the skip, double conv."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        out_channels = in_channels // 2
        self.reduce = nn.Conv2d(in_channels, out_channels, 1)
        self.merge = DoubleConv(2 * out_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.merge(torch.cat([skip, self.reduce(x)], dim=1))


class UNet(nn.Module):
    """U-Net mapping ``B×3×H×W`` to ``B×num_classes×H×W`` logits."""

    # The final layer, which a weights file trained for another class count may not match.
    classifier_keys = ("classifier.weight", "classifier.bias")

    def __init__(self, num_classes: int, width: int = 16, depth: int = 4) -> None:
        super().__init__()
        if num_classes < 1 or width < 1 or depth < 1:
            raise ValueError(f"UNet needs num_classes, width, depth >= 1, got {num_classes}, {width}, {depth}.")
        channels = [width * 2**k for k in range(depth + 1)]
        self.stem = DoubleConv(3, channels[0])
        self.down = nn.ModuleList(
            nn.Sequential(nn.MaxPool2d(2), DoubleConv(c_in, c_out)) for c_in, c_out in zip(channels, channels[1:])
        )
        self.up = nn.ModuleList(Up(c) for c in reversed(channels[1:]))
        self.classifier = nn.Conv2d(channels[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.up:
            x = up(x, skips.pop())
        return self.classifier(x)


@register_model("unet")
def unet(cfg: ModelConfig, num_classes: int) -> UNet:
    if cfg.width < 1:
        raise ConfigError(f"model.width={cfg.width} must be a positive number of U-Net base channels (16 is a good start).")
    return UNet(num_classes, width=cfg.width, depth=cfg.depth)
