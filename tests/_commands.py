"""Command lines the end-to-end tests share."""

from __future__ import annotations

import sys


def torchrun_command(*train_args: str, nproc: int = 2, max_restarts: int = 0, backend: bool = True) -> list[str]:
    """torchrun --standalone (``python -m torch.distributed.run``) running ``surf_dist train --backend torch``
    (without ``--backend`` when ``backend`` is false: under torchrun it is the default)."""
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
        "--max-restarts", str(max_restarts), "-m", "surf_dist", "train", *(["--backend", "torch"] if backend else []),
        *train_args,
    ]  # fmt: skip
