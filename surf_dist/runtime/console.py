"""The terminal a run shares: the coordinator's progress bars and the supervisor's and the CLI's one-line messages.

A bar redraws its line with ``\\r`` and ends it only when it closes, so a message printed meanwhile by another
process (the supervisor, when a rank dies or Ctrl-C stops a forked rank that was drawing) would be glued to the
bar (``…viol=3]surf-dist train: interrupted at step 13``). The bars mark that a line is open in a byte of shared
memory that forked workers inherit; ``end_line`` finishes that line before a message.

Off a terminal (a log file, CI) a bar prints whole lines, at most one every ``LOG_INTERVAL_S`` seconds and at its
end, instead of a redraw per update.
"""

from __future__ import annotations

import multiprocessing
import sys
from typing import IO, Any

from tqdm import tqdm

LOG_INTERVAL_S = 30.0  # off a terminal: at most one line this often
TTY_INTERVAL_S = 1.0  # on a terminal: at most one redraw this often

_open_line = multiprocessing.RawValue("b", 0)  # shared with every worker forked after this import


class _Lines:
    """A stream for a bar off a terminal: each redraw (``\\r...``) becomes one whole line."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        line = text.replace("\r", "").rstrip("\n")
        if line.strip():
            self.stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


class Bar(tqdm):
    """A tqdm bar that marks the shared terminal line it holds open (see the module's docstring)."""

    def __init__(self, *args: Any, terminal: bool = False, **kwargs: Any) -> None:
        self._terminal = terminal
        super().__init__(*args, **kwargs)

    def display(self, *args: Any, **kwargs: Any) -> Any:
        shown = super().display(*args, **kwargs)
        if self._terminal and not self.disable:
            _open_line.value = 1
        return shown

    def close(self) -> None:
        super().close()  # leave=True ends the line, leave=False clears it: either way none is open
        if self._terminal:
            _open_line.value = 0


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def progress_bar(
    total: int, *, initial: int = 0, desc: str, unit: str, leave: bool = True, disable: bool = False
) -> Bar:
    """A bar on stderr: redrawn at most once a second on a terminal; off one, a line every 30 s and at the end."""
    stream = sys.stderr
    common: dict[str, Any] = dict(total=total, initial=initial, desc=desc, unit=unit, leave=leave, disable=disable)
    if _is_terminal(stream):
        return Bar(**common, file=stream, terminal=True, dynamic_ncols=True, mininterval=TTY_INTERVAL_S)
    return Bar(
        **common,
        file=_Lines(stream),
        ncols=100,
        mininterval=LOG_INTERVAL_S,
        maxinterval=float("inf"),  # never lower mininterval's throttle from tqdm's monitor thread
    )


def end_line(stream: IO[str] | None = None) -> None:
    """Finish a line a progress bar (of this process or a worker forked from it) left open, before a message."""
    if _open_line.value:
        _open_line.value = 0
        stream = stream or sys.stderr
        stream.write("\n")
        stream.flush()


def say(message: str) -> None:
    """One line on stderr, on a line of its own."""
    end_line()
    print(message, file=sys.stderr, flush=True)
