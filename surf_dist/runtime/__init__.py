"""Processes: free ports and exit reasons, one supervisor (``supervisor``) for every backend, the torch
launcher (``torch_launch``), the Ray driver and actors (``ray_driver``), and ``launch`` for ``surf-dist train``."""
