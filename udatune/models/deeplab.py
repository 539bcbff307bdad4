"""torchvision's DeepLabV3 models, returning a logits tensor instead of a dict.

torchvision's segmentation models return ``{"out": logits, "aux": ...}``; udatune's trainer
expects a tensor like every other registered model. `DeepLabV3Logits` keeps torchvision's
``backbone`` and ``classifier`` under the same attribute names, so its state_dict keys are
torchvision's: a checkpoint saved from a torchvision DeepLabV3 loads as is (its auxiliary head,
which we never build, is ignored). The output is bilinearly resized to the input size, so any
``H, W >= 32`` works. ``model.width`` is ignored.

Weights are never downloaded: the constructors get ``weights=None, weights_backbone=None``.
Use ``model.weights`` with a local file to start from pretrained weights.

Caveat: the ASPP image-pooling branch reduces each image to 1×1 before a BatchNorm, so in
train mode a batch of one raises "Expected more than 1 value per channel". Train with batch
size >= 2 (eval mode is fine with one image).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import torch
import torch.nn.functional as F
from torch import nn

from udatune.config import ModelConfig
from udatune.models.registry import EncoderModel, register_model

if TYPE_CHECKING:
    from torchvision.models.segmentation import DeepLabV3

# torchvision is imported only when a DeepLabV3 is built: importing it pulls in torch._dynamo,
# about 1.5 s of start-up that every U-Net trial would otherwise pay.


class DeepLabV3Logits(EncoderModel):
    """A torchvision DeepLabV3 without the auxiliary head, returning the ``"out"`` logits."""

    # DeepLabHead is ASPP, 3×3 conv, BN, ReLU, then the 1×1 conv to classes at index 4.
    classifier_keys = ("classifier.4.weight", "classifier.4.bias")
    ignored_weight_prefixes = ("aux_classifier.",)

    def __init__(self, net: "DeepLabV3") -> None:
        super().__init__()
        self.backbone = net.backbone
        self.classifier = net.classifier

    @property
    def encoder(self) -> nn.Module:
        """The backbone: pretrained when ``model.weights`` comes from an ImageNet-trained model."""
        return self.backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.backbone(x)["out"]
        logits = self.classifier(features)
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


def _build(constructor: Callable[..., "DeepLabV3"], num_classes: int) -> DeepLabV3Logits:
    net = constructor(weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=False)
    return DeepLabV3Logits(net)


@register_model("deeplabv3_mobilenet")
def deeplabv3_mobilenet(cfg: ModelConfig, num_classes: int) -> DeepLabV3Logits:
    """MobileNetV3-Large backbone, output stride 16: ~11M parameters, the fast choice."""
    from torchvision.models import segmentation

    return _build(segmentation.deeplabv3_mobilenet_v3_large, num_classes)


@register_model("deeplabv3_resnet50")
def deeplabv3_resnet50(cfg: ModelConfig, num_classes: int) -> DeepLabV3Logits:
    """ResNet-50 backbone, output stride 8: ~40M parameters, slow on CPU."""
    from torchvision.models import segmentation

    return _build(segmentation.deeplabv3_resnet50, num_classes)
