"""``metrics.jsonl``: one JSON line per meta-training step, written by the coordinator as it goes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class MetricsLog:
    """Appends one row per step to ``path`` and flushes it, so a crash loses at most the row being written."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fh = open(self.path, "a")  # noqa: SIM115 - closed by close()

    def append(self, row: dict[str, Any]) -> None:
        self._fh.write(json.dumps(row) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()
