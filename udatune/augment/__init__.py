"""Strong augmentation for UDA: an op registry, policies over it, and the aligned warp.

data -> ``policy.apply`` in the loader worker (photometric ops on uint8, geometry drawn as data)
-> ``apply_strong_geometry`` / ``warp_labels`` on the device (geometry replayed identically on
the student's input, the teacher's prediction and the labels).
"""

from udatune.augment.ops import OPS, SPACES, Op, describe_ops
from udatune.augment.policy import (
    DEFAULT_AUTOAUGMENT,
    AutoAugment,
    Identity,
    Policy,
    RandAugment,
    StrongView,
    TrivialAugment,
    parse_policy,
)
from udatune.augment.warp import apply_strong_geometry, warp_labels

__all__ = [
    "OPS", "SPACES", "Op", "describe_ops",
    "DEFAULT_AUTOAUGMENT", "AutoAugment", "Identity", "Policy", "RandAugment", "StrongView",
    "TrivialAugment", "parse_policy",
    "apply_strong_geometry", "warp_labels",
]
