"""segmentation_models_pytorch (smp) architectures over any smp or timm (``tu-*``) encoder.

Names: each architecture is registered under smp's own name (``smp.create_model(arch)``), except
smp's U-Net, which is ``smp-unet`` because ``unet`` is udatune's own small U-Net. torchvision's
DeepLabV3 models keep their names with the backbone in them (``deeplabv3_mobilenet``,
``deeplabv3_resnet50``) and take no ``--encoder``; smp's ``deeplabv3`` and ``deeplabv3plus`` do.

`SmpSegmenter` adapts an smp model to udatune's model contract (see `registry`):

* any ``H, W >= 32``: smp needs sides divisible by the encoder's total stride (32), so the input
  is padded at the bottom and right with zeros — the mean colour after normalisation — and the
  logits are cropped back;
* ImageNet-normalised input, as every udatune model takes; an encoder pretrained with other
  statistics (smp's ``get_preprocessing_params``: mean, std, input range, BGR) gets them by a
  per-channel affine map inside ``forward``, so the trainer, the teacher and the report's
  predictions never need to know which encoder they hold.

The smp model sits under ``net``, so a state dict's keys are smp's with a ``net.`` prefix.
"""

from __future__ import annotations

import dataclasses
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from udatune.config import ModelConfig
from udatune.models.encoder_weights import IMAGENET_MEAN, IMAGENET_STD, Preprocessing, load_encoder_state, resolve_encoder_weights
from udatune.models.registry import EncoderModel, register_model

# Registered name -> smp's architecture name. Left out: DPT (ViT encoders at a fixed size only) and
# PAN (its pyramid pooling needs sides of 128 or more; udatune's frames are often smaller).
ARCHITECTURES = {
    "smp-unet": "unet",
    "unetplusplus": "unetplusplus",
    "manet": "manet",
    "linknet": "linknet",
    "fpn": "fpn",
    "pspnet": "pspnet",
    "deeplabv3": "deeplabv3",
    "deeplabv3plus": "deeplabv3plus",
    "upernet": "upernet",
    "segformer": "segformer",
}
STRIDE = 32  # smp's encoders downsample 2^5 times


class SmpSegmenter(EncoderModel):
    """An smp model mapping ImageNet-normalised ``B×3×H×W`` to ``B×K×H×W`` logits at any size."""

    classifier_keys = ("net.segmentation_head.0.weight", "net.segmentation_head.0.bias")

    def __init__(self, net: nn.Module, preprocessing: Preprocessing) -> None:
        super().__init__()
        self.net = net
        p = preprocessing
        flip = p.input_space.upper() == "BGR"
        scale = p.input_range[1] - p.input_range[0]
        order = [2, 1, 0] if flip else [0, 1, 2]
        # x_enc[c] = ((x[o]·std_in[o] + mean_in[o])·scale + low − mean[c]) / std[c], o = order[c]
        in_std = torch.tensor(IMAGENET_STD)[order]
        in_mean = torch.tensor(IMAGENET_MEAN)[order]
        mean, std = torch.tensor(p.mean, dtype=torch.float32), torch.tensor(p.std, dtype=torch.float32)
        gain = in_std * scale / std
        bias = (in_mean * scale + p.input_range[0] - mean) / std
        self.order = order
        self.identity = not flip and torch.allclose(gain, torch.ones(3)) and torch.allclose(bias, torch.zeros(3))
        # Not persistent: derived from the encoder's name and weights, not learned state.
        self.register_buffer("gain", gain.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("bias", bias.view(1, 3, 1, 1), persistent=False)

    @property
    def encoder(self) -> nn.Module:
        return self.net.encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.identity:
            x = x[:, self.order] * self.gain + self.bias
        h, w = x.shape[-2:]
        pad_h, pad_w = -h % STRIDE, -w % STRIDE
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        return self.net(x)[..., :h, :w]


def build_smp(arch: str, cfg: ModelConfig, num_classes: int) -> SmpSegmenter:
    """Build ``arch`` over ``cfg.encoder`` and load the encoder weights ``cfg.encoder_weights`` names.

    The weights are resolved (and fetched, if not yet cached and the network allows) before the
    model is built, so a bad choice fails with one message. smp's own encoders are loaded from
    the resolved file by udatune, the same bytes whose hash is recorded; ``tu-*`` encoders are
    loaded by timm from the cache the resolution filled, through timm's own key filters.
    """
    import segmentation_models_pytorch as smp

    weights = resolve_encoder_weights(cfg, fetch=True)
    timm_pretrained = weights.file is not None and not weights.local_file and cfg.encoder.startswith("tu-")
    with warnings.catch_warnings():
        # smp warns that tu-* encoders take True rather than a name; True is what we pass.
        warnings.simplefilter("ignore", UserWarning)
        net = smp.create_model(arch, encoder_name=cfg.encoder, encoder_weights=True if timm_pretrained else None, classes=num_classes)
    if weights.file is not None and not timm_pretrained:
        if weights.local_file:
            load_encoder_state(net.encoder, weights.file)
        else:
            from safetensors.torch import load_file

            net.encoder.load_state_dict(load_file(str(weights.file), device="cpu"))
    return SmpSegmenter(net, weights.preprocessing)


def prepare_smp(cfg: ModelConfig) -> ModelConfig:
    """Resolve the encoder weights once (fetching them into the cache if needed) and record
    their hash in the config, so every trial built from it loads and reports the same file."""
    weights = resolve_encoder_weights(cfg, fetch=True)
    return dataclasses.replace(cfg, encoder_weights_sha256=weights.sha256)


def _register(name: str, arch: str) -> None:
    def builder(cfg: ModelConfig, num_classes: int) -> SmpSegmenter:
        return build_smp(arch, cfg, num_classes)

    builder.__doc__ = f"smp's {arch} over --encoder (smp.create_model({arch!r}, ...))."
    register_model(name, prepare=prepare_smp, takes_encoder=True)(builder)


for _name, _arch in ARCHITECTURES.items():
    _register(_name, _arch)
