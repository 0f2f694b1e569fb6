"""Training runs behind the paper's figures: each one an ordinary ``surf-dist train`` run directory.

``ensure_run`` trains a run (through ``runtime.launch``, the machinery of ``surf-dist train``) unless its
directory already holds a finished run of the same config, so ``paper-figures`` can be re-run to redraw
without retraining, and every number of a figure can be traced to a ``summary.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..config import load_config, read_config
from ..errors import InputError
from ..runtime.launch import launch


def ensure_run(out: Path, preset: str, overrides: list[str], *, progress: bool = False) -> dict[str, Any]:
    """The summary of the run ``preset`` + ``overrides`` in ``out``, training it first when not finished there.

    Raises:
        InputError: the config is invalid, or ``out`` holds a finished run of another config.
    """
    cfg = load_config(preset, None, overrides)
    summary_path = out / "summary.json"
    if summary_path.exists():
        if read_config(out / "config.json").computed() != cfg.computed():
            raise InputError(
                [f"{out}: holds a finished run of another config (fix: delete that directory or choose another --out)"]
            )
        return json.loads(summary_path.read_text())
    if progress:
        print(f"training {out} ({preset}{' ' if overrides else ''}{' '.join('--set ' + o for o in overrides)})")
    launch(cfg, out, progress=False)
    return json.loads(summary_path.read_text())


def train_violations(run: Path) -> dict[str, int]:
    """Constraint violations during meta-training: (step, layer) pairs with a positive slack, from
    ``metrics.jsonl``, and the number of pairs."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    slacks = [s for row in rows for s in row["slacks"]]
    return {"violations": sum(1 for s in slacks if s > 0), "pairs": len(slacks)}
