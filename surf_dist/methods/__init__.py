"""The registered methods (baselines) that ship with surf-dist; each module registers its own. A plugin registers
more with ``@surf_dist.register_baseline(name)`` on a ``surf_dist.Method`` subclass (``methods.base``)."""

from . import dgd, dfedavgm, tracking, choco, pushsum, reference, fedavg, star  # noqa: F401, I001 - in table order
from .base import Method

__all__ = ["Method"]
