"""What a user reads: one problem per cause (``--workers 0`` is not also blamed on the graph), the setting that
fixes a disconnected graph, the progress bar's fields, whole lines off a terminal, and messages that never glue
onto a progress bar's open line."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest

from surf_dist.cli import main
from surf_dist.runtime import console
from surf_dist.worker.loop import _postfix


@pytest.mark.parametrize("backend", [[], ["--backend", "torch"], ["--backend", "ray"]])
def test_zero_workers_is_one_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str], backend: list[str]) -> None:
    """Catches ``--workers 0`` reported three times: as itself, as the local backend's rule and as a problem of
    ``topology.spec``."""
    assert main(["train", "--preset", "smoke", *backend, "--workers", "0", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "bad input (1 problem)" in err and "run.workers = 0: must be ≥ 1" in err, err
    assert "topology.spec" not in err, err


def test_a_disconnected_draw_names_the_setting_that_allows_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Catches a disconnected graph refused without naming ``topology.allow_disconnected=true``."""
    out = str(tmp_path / "r")
    assert main(["train", "--preset", "smoke", "--set", "topology.spec=random:n=20,p=0.01", "--out", out]) == 2
    assert "topology.allow_disconnected=true" in capsys.readouterr().err


def test_progress_shows_no_validation_loss_before_there_is_one() -> None:
    """Catches the bar's ``val=inf`` before the first validation (digits: the first epoch)."""
    row = {"lagrangian": 1.0, "loss": 0.5, "slacks": [0.1, -0.2, 0.3]}
    assert _postfix(row, math.inf) == {"lag": "1.000", "loss": "0.500", "viol": 2}
    assert _postfix(row, 0.25)["val"] == "0.250"


def test_off_a_terminal_the_bar_writes_whole_lines_at_its_pace(monkeypatch: pytest.MonkeyPatch) -> None:
    """Catches a log (CI, a file) that gets a ``\\r``-joined redraw per step instead of a few whole lines."""
    err = io.StringIO()  # not a terminal
    monkeypatch.setattr("sys.stderr", err)
    bar = console.progress_bar(1000, desc="meta-train", unit="step")
    for _ in range(1000):
        bar.update(1)
        bar.set_postfix({"loss": "0.1"}, refresh=False)
    bar.close()
    lines = err.getvalue().splitlines()
    assert "\r" not in err.getvalue()
    assert 2 <= len(lines) <= 4, lines  # the start and the end (and nothing between: the loop takes < 30 s)
    assert "1000/1000" in lines[-1]


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_message_after_a_bar_starts_on_a_line_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Catches ``…viol=3]surf-dist train: interrupted at step 13``: a message printed while a bar (of this process
    or of a forked rank killed while drawing) holds the terminal's line open."""
    tty = _Tty()
    monkeypatch.setattr("sys.stderr", tty)
    bar = console.progress_bar(10, desc="meta-train", unit="step")
    bar.update(3)
    bar.refresh()
    console.say("surf-dist train: interrupted at step 3")  # the bar was never closed, as in a killed rank
    assert "]\nsurf-dist train: interrupted at step 3\n" in tty.getvalue(), repr(tty.getvalue())
    console.say("surf-dist: a second line")  # no open line now: no blank line either
    assert tty.getvalue().endswith("interrupted at step 3\nsurf-dist: a second line\n")
    bar.close()
