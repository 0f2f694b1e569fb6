"""The registered methods (baselines) that ship with surf-dist; each module registers its own. A plugin registers
more with ``@surf_dist.register_baseline(name)`` on a ``surf_dist.Method`` subclass (``methods.base``)."""

from . import dfedavgm, dgd, fedavg  # noqa: F401 - each registers its methods
from .base import Method

__all__ = ["Method"]
