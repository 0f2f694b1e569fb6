"""``surf_dist.Arrays``: what a dataset loader returns (no torch needed to build one)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Arrays:
    """One split of a dataset as arrays (NumPy or torch).

    Attributes:
        x: N × P features (used as they are; ``data.features = "pixels"``) or N × C × H × W images in [0, 1]
            (any feature map and augmentation).
        labels: N integer class ids in [0, num_classes).
        num_classes: the number of classes (default: the largest label of the train split + 1).
    """

    x: Any
    labels: Any
    num_classes: int | None = None
