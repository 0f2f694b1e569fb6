"""SIGINT and SIGTERM for the process that runs a command: both become ``errors.Interrupted``, raised once in
the main thread, so that the ``finally`` blocks on the way out stop every worker (forked ranks, the local
worker process, Ray actors) before the CLI prints one line and exits 130 or 143.

A signal that arrives inside a ``critical()`` block (an atomic file write, a checkpoint) is held until the
block ends, so an interrupt never leaves a half-written file or a serializer in a broken state.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from ..errors import Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _State:
    installed = False
    fired: int | None = None  # the first signal; later ones are ignored while it unwinds
    held = False  # it arrived inside a critical block and is raised when the block ends
    depth = 0


_state = _State()


def _handler(signum: int, frame: FrameType | None) -> None:
    if _state.fired is not None:
        return
    _state.fired = signum
    if _state.depth:
        _state.held = True
        return
    raise Interrupted(signum)


@contextlib.contextmanager
def interrupts_raise() -> Iterator[None]:
    """Inside the block the first SIGINT or SIGTERM raises ``Interrupted``; later ones are ignored while it
    unwinds (stopping the workers must not be cut short). Outside the main thread: nothing changes."""
    if threading.current_thread() is not threading.main_thread() or _state.installed:
        yield
        return
    previous = {s: signal.signal(s, _handler) for s in SIGNALS}
    _state.installed, _state.fired, _state.held = True, None, False
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        _state.installed = False


@contextlib.contextmanager
def critical() -> Iterator[None]:
    """Hold an interrupt until the block ends (then raise it)."""
    _state.depth += 1
    try:
        yield
    finally:
        _state.depth -= 1
        if _state.depth == 0 and _state.held and _state.fired is not None:
            _state.held = False
            raise Interrupted(_state.fired)


def exit_code(exc: KeyboardInterrupt) -> int:
    """128 + the signal that interrupted the command (130: SIGINT; 143: SIGTERM). Ray re-raises a bare
    ``KeyboardInterrupt`` for any signal it sees in ``ray.wait``, so the handler's record comes first."""
    signum = _state.fired or getattr(exc, "signum", None) or signal.SIGINT
    return 128 + int(signum)


def keep_handlers() -> contextlib.AbstractContextManager[None]:
    """Restore this process's SIGINT and SIGTERM handlers after the block (``ray.init`` replaces SIGTERM's)."""
    if threading.current_thread() is not threading.main_thread():
        return contextlib.nullcontext()
    saved = {s: signal.getsignal(s) for s in SIGNALS}

    @contextlib.contextmanager
    def restore() -> Iterator[None]:
        try:
            yield
        finally:
            for s, h in saved.items():
                if h is not None:
                    signal.signal(s, h)

    return restore()
