"""The quick tables of measured numbers in the docs are what their runs give today (``bench/doc_numbers.py``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from _processes import clean_env

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(300)
def test_quick_tables_regenerate(tmp_path: Path) -> None:
    """Catches a documented table that no longer matches what the command behind it prints."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "doc_numbers.py"), "--check", "--runs", str(tmp_path), "quick"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("up to date") == 2
