"""The items of ``failures.kill`` / ``hang`` / ``stop``: ``WORKER@STEP`` or ``WORKER@STEP:POINT``, parsed and
checked against the run they would fire in."""

from __future__ import annotations

import re

from .schema import Config

KILL_RE = re.compile(r"^(\d+)@(\d+)(?::([a-z]+))?$")
# where a kill fires: at the start of meta-training step STEP (the default); inside the checkpoint of step STEP,
# after the previous one was set aside and before the new one is renamed into place (the coordinator writes
# checkpoints: worker 0 only); inside the final evaluation, at evaluated task STEP
KILL_POINTS = ("step", "checkpoint", "eval")


def parse_fault(item: str) -> tuple[int, int, str]:
    """``WORKER@STEP`` or ``WORKER@STEP:POINT`` as (worker, step, point); ValueError when malformed."""
    m = KILL_RE.match(item.strip())
    if not m or (m.group(3) or "step") not in KILL_POINTS:
        raise ValueError(item)
    return int(m.group(1)), int(m.group(2)), m.group(3) or "step"


def parse_kill(item: str) -> tuple[int, int]:
    """``WORKER@STEP`` (a point after it is ignored here) as (worker, step)."""
    worker, step, _ = parse_fault(item)
    return worker, step


def fault_problems(name: str, item: str, cfg: Config) -> list[str]:
    """A ``failures.kill`` / ``hang`` / ``stop`` item: its form, its worker, its point, and that it can fire."""
    num_workers = cfg.run.workers
    try:
        worker, step, point = parse_fault(item)
    except ValueError:
        more = " (or 0@5:checkpoint, 1@0:eval: a kill inside a checkpoint or the evaluation)" if name == "kill" else ""
        return [f"failures.{name} = {item!r}: expected WORKER@STEP, e.g. 1@5{more}"]
    p = []
    if num_workers >= 1 and worker >= num_workers:  # run.workers < 1 is reported on its own
        p.append(f"failures.{name} = {item!r}: worker {worker} does not exist (fix: a worker in 0..{num_workers - 1})")
    if point != "step" and name != "kill":
        p.append(f"failures.{name} = {item!r}: a point ({point}) is for failures.kill only; fix: WORKER@STEP")
    elif point == "checkpoint" and worker != 0:
        p.append(f"failures.kill = {item!r}: only the coordinator writes checkpoints; fix: 0@{step}:checkpoint")
    num_steps = cfg.train.epochs * cfg.data.num_meta_train
    num_tasks = cfg.data.num_meta_test if cfg.eval.split == "meta-test" else cfg.data.num_meta_val
    if point == "eval" and step >= num_tasks:
        p.append(f"failures.{name} = {item!r}: the evaluation has tasks 0..{num_tasks - 1} only (it would never fire)")
    elif point == "step" and step >= num_steps:
        p.append(f"failures.{name} = {item!r}: the run has steps 0..{num_steps - 1} only (it would never fire)")
    elif point == "checkpoint" and not 1 <= step <= num_steps:
        p.append(f"failures.{name} = {item!r}: checkpoints are of steps 1..{num_steps} only (it would never fire)")
    return p
