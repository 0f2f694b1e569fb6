"""Atomic file writes: a reader (or a run resumed after a crash) sees the old file or the new one, never half.

Every write goes to a temp file in the target's folder, is flushed and fsynced, renamed over the target
(``os.replace`` is atomic on POSIX), and the folder is fsynced so that the rename itself survives a power
cut. The file gets the mode a plain ``open(path, "w")`` would give (0666 less the umask; ``mkstemp``'s
temp files are 0600). A failed write removes its temp file and leaves the target as it was. An interrupt
(SIGINT, SIGTERM) that arrives during a write is held until the write is done (``interrupts.critical``).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from ..runtime.interrupts import critical


def _umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_dir(path: str | Path) -> None:
    """Make the folder's entries (a rename, a new file) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str | Path, write: Callable[[IO[bytes]], object]) -> Path:
    """Call ``write(fh)`` on a temp file beside ``path``, then fsync and rename it to ``path``."""
    path = Path(path)
    with critical():
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            os.fchmod(fd, 0o666 & ~_umask())
            with os.fdopen(fd, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        fsync_dir(path.parent)
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_atomic(path, lambda fh: fh.write(text.encode("utf-8")))


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    """``obj`` as indented JSON, one trailing newline."""
    return write_text_atomic(path, json.dumps(obj, indent=2) + "\n")


def torch_save_atomic(path: str | Path, obj: Any) -> Path:
    import torch  # only where a checkpoint is written: the CLI's parsing and validation import no torch

    return write_atomic(path, lambda fh: torch.save(obj, fh))
