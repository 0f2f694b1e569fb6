"""Silence the C++ side of torch for a moment: c10d logs every failed store call with a stack dump on fd 2,
which Python's ``sys.stderr`` does not see, so only a redirect of the file descriptor quiets it."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def fd2_silenced() -> Iterator[None]:
    """Send fd 2 to /dev/null inside the block (for calls whose failure is expected and reported otherwise)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
