"""udatune: search, on a Ray cluster, for the augmentation policy and UDA settings
that make unlabeled images lift a semantic-segmentation model the most."""

__version__ = "0.1.0"
