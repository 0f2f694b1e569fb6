"""Processes: free ports and exit reasons, one supervisor (``supervisor``) for every backend, the torch
launcher (``torch_launch``), the Ray driver and actors (``ray_driver``), and ``launch`` for ``surf-dist train``."""

import os


def under_torchrun() -> bool:
    """This process is a rank that torchrun (or another launcher speaking its environment) started: RANK and
    WORLD_SIZE are set."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ
