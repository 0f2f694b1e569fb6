"""The summary of a run (``summary.json``, the contract of ``docs/summary.md``) as typed objects, built in one
place (``build_summary``) and read back (``Summary.from_dict``).

Typed where a reader computes with it (U-DGD's curves, every method's, the training history); the ledger's
breakdowns (``comm``), ``failures`` and ``timing`` stay plain JSON objects. ``to_dict()`` gives exactly what
``summary.json`` holds; ``from_dict`` accepts older runs' files (a missing optional key takes its default).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


def _fields_from(cls: type, d: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in d.items() if k in names}


@dataclass(frozen=True)
class UDGDResult:
    """U-DGD on the evaluated tasks, per layer (layer 0 = W_0 first; means over tasks)."""

    accuracy_per_layer: list[float]
    loss_per_layer: list[float]
    rounds: int  # communication rounds of its L layers, K·L
    rounds_per_layer: list[int]
    accuracy_std_per_layer: list[float] = field(default_factory=list)
    loss_std_per_layer: list[float] = field(default_factory=list)
    grad_norm_per_layer: list[float] = field(default_factory=list)
    slack_per_layer: list[float] = field(default_factory=list)
    violations_per_layer: list[int] = field(default_factory=list)
    final_accuracy: float = 0.0
    silent_agent_layers: int = 0
    time_s: list[float] = field(default_factory=list)  # simulated seconds after 0..L layers
    deadline_misses_per_layer: list[int] = field(default_factory=list)
    agent_bytes: list[float] = field(default_factory=list)  # agents' logical bytes after 0..L layers, per task
    to_target: dict[str, Any] | None = None  # the first layer reaching eval.target_accuracy: its costs


@dataclass(frozen=True)
class MethodResult:
    """A registered method on the evaluated tasks, per round (round 0 = W_0 first; means over tasks)."""

    rounds: list[int]
    accuracy: list[float]
    accuracy_std: list[float] = field(default_factory=list)
    accuracy_at_udgd_rounds: float = 0.0
    accuracy_at_max_rounds: float = 0.0
    time_s: list[float] = field(default_factory=list)
    deadline_misses: int = 0
    agent_bytes: list[float] = field(default_factory=list)
    to_target: dict[str, Any] | None = None


@dataclass(frozen=True)
class EvalResult:
    """The ``eval`` section: U-DGD and every method of ``eval.baselines`` (``udgd`` None: the methods alone,
    ``eval.udgd = false``)."""

    num_tasks: int
    split: str
    udgd: UDGDResult | None
    baselines: dict[str, MethodResult]
    target_accuracy: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvalResult:
        return cls(
            num_tasks=d["num_tasks"],
            split=d.get("split", "meta-test"),
            udgd=None if d.get("udgd") is None else UDGDResult(**_fields_from(UDGDResult, d["udgd"])),
            baselines={name: MethodResult(**_fields_from(MethodResult, b)) for name, b in d["baselines"].items()},
            target_accuracy=d.get("target_accuracy"),
        )


@dataclass(frozen=True)
class TrainResult:
    """The ``train`` section: meta-training's history and end state."""

    loss_per_step: list[float]  # the Lagrangian of every step, in order
    final_param_norms: dict[str, float]
    heldout_loss_per_step: list[float] = field(default_factory=list)
    final_duals: list[float] = field(default_factory=list)
    best_val_loss: float = float("inf")
    best_step: int = -1
    val: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0
    constrained: bool = True


@dataclass(frozen=True)
class Summary:
    """A finished run: who ran it, how it trained, how it evaluated, what it sent, what failed, how long it took."""

    backend: str
    workers: int
    seed: int
    train: TrainResult
    eval: EvalResult
    comm: dict[str, Any]
    failures: dict[str, Any]
    timing: dict[str, Any]
    num_agents: int = 0
    placement: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        order = ["backend", "workers", "seed", "num_agents", "placement", "train", "eval", "comm", "failures", "timing"]
        return {k: d[k] for k in order}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Summary:
        return cls(
            backend=d["backend"],
            workers=d["workers"],
            seed=d["seed"],
            num_agents=d.get("num_agents", 0),
            placement=d.get("placement", {}),
            train=TrainResult(**_fields_from(TrainResult, d["train"])),
            eval=EvalResult.from_dict(d["eval"]),
            comm=d.get("comm", {}),
            failures=d.get("failures", {}),
            timing=d.get("timing", {}),
        )
