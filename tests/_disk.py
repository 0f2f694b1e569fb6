"""A small disk for the disk-fault tests: a tmpfs mounted for a test's duration, and remounts (root only)."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _mount(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


@contextlib.contextmanager
def tmpfs(path: Path, size_bytes: int) -> Iterator[Path]:
    """A tmpfs of ``size_bytes`` at ``path`` for the test's duration (skipped where mounting is not permitted)."""
    path.mkdir(parents=True, exist_ok=True)
    r = _mount("-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(path))
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root and mount(8)): {r.stderr.strip()}")
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)  # lazily, should a process linger


def remount(path: Path, options: str, timeout_s: float = 20.0) -> None:
    """``mount -o remount,OPTIONS``, retried while the file system is busy (a checkpoint's temp file open)."""
    deadline = time.monotonic() + timeout_s
    while True:
        r = _mount("-o", f"remount,{options}", str(path))
        if r.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"remount,{options} of {path} failed for {timeout_s} s: {r.stderr.strip()}")
        time.sleep(0.005)
