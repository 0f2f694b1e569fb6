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


class TensorBoardLog:
    """The same rows as TensorBoard scalars in ``RUN/tensorboard`` (``run.tensorboard``); events past ``step``
    left by an interrupted attempt are dropped on resume (``purge_step``)."""

    SCALARS = ("lagrangian", "loss", "val_loss", "theta_grad_norm", "seconds")

    def __init__(self, run_dir: Path, step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter  # optional: needs the tensorboard package

        self._writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=step)

    def append(self, row: dict[str, Any]) -> None:
        step = int(row["step"])
        for name in self.SCALARS:
            if name in row:
                self._writer.add_scalar(f"train/{name}", row[name], step)
        for name in ("slacks", "duals"):
            for layer, value in enumerate(row.get(name, []), start=1):
                self._writer.add_scalar(f"{name}/layer{layer}", value, step)

    def close(self) -> None:
        self._writer.close()
