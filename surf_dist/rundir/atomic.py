"""Atomic file writes: a reader (or a run resumed after a crash) sees the old file or the new one, never half.

Every write goes to a temp file in the target's folder, is flushed and fsynced, renamed over the target
(``os.replace`` is atomic on POSIX), and the folder is fsynced so that the rename itself survives a power
cut. The file gets the mode a plain ``open(path, "w")`` would give (0666 less the umask; ``mkstemp``'s
temp files are 0600). A failed write removes its temp file and leaves the target as it was. An interrupt
(SIGINT, SIGTERM) that arrives during a write is held until the write is done (``interrupts.critical``).

A write that fails for want of room or of a writable disk (ENOSPC, EDQUOT, EROFS; also when torch wraps the
``OSError`` in its own ``RuntimeError``) raises ``errors.CannotWrite`` naming the target (``disk_errors``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from ..errors import CannotWrite
from ..runtime.interrupts import critical

DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)  # the disk, not the program: a clear line, no traceback


def disk_oserror(exc: BaseException) -> OSError | None:
    """The ENOSPC / EDQUOT / EROFS ``OSError`` behind ``exc`` (itself, or its cause or context: ``torch.save``
    to a full disk raises a ``RuntimeError`` while handling the ``OSError``); None when there is none."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno in DISK_ERRNOS:
            return cur
        cur = cur.__cause__ or cur.__context__
    return None


@contextlib.contextmanager
def disk_errors(path: str | Path) -> Iterator[None]:
    """Turn a full or read-only disk met inside the block into ``CannotWrite(path)``; other errors pass."""
    try:
        yield
    except CannotWrite:
        raise
    except Exception as exc:
        found = disk_oserror(exc)
        if found is None:
            raise
        code = errno.errorcode.get(found.errno or 0, "ENOSPC")
        raise CannotWrite(str(path), os.strerror(found.errno or errno.ENOSPC), code) from None


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Remove the temp files (``.NAME.XXXX.tmp``) that writes cut off by a disk turned read-only could not
    remove; the files removed. Called by the one process that writes ``folder``, before it writes."""
    removed = []
    for tmp in Path(folder).glob(".*.tmp"):
        with contextlib.suppress(OSError):
            tmp.unlink()
            removed.append(tmp)
    return removed


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
    with critical(), disk_errors(path):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            os.fchmod(fd, 0o666 & ~_umask())
            with os.fdopen(fd, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):  # (a disk turned read-only keeps it: remove_stale_temps)
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
