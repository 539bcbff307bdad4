"""`udatune ops` and `udatune preview` (augmentation policies) — wired once the policy
library lands."""
