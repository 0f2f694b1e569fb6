"""Command lines and bad inputs the end-to-end tests share."""

from __future__ import annotations

import sys
from pathlib import Path


def torchrun_command(*train_args: str, nproc: int = 2, max_restarts: int = 0, backend: bool = True) -> list[str]:
    """torchrun --standalone (``python -m torch.distributed.run``) running ``surf_dist train --backend torch``
    (without ``--backend`` when ``backend`` is false: under torchrun it is the default)."""
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
        "--max-restarts", str(max_restarts), "-m", "surf_dist", "train", *(["--backend", "torch"] if backend else []),
        *train_args,
    ]  # fmt: skip


def corrupt_fashion_mnist(root: Path) -> Path:
    """Every Fashion-MNIST file present, and none of them an IDX file: found up front, unreadable in workers."""
    root.mkdir()
    for split in ("train", "t10k"):
        (root / f"{split}-images-idx3-ubyte").write_bytes(b"not an IDX file")
        (root / f"{split}-labels-idx1-ubyte").write_bytes(b"not an IDX file")
    return root
