"""surf-dist: a distributed simulator for Stochastic Unrolled Federated learning (SURF / U-DGD)."""

__version__ = "0.1.0"
