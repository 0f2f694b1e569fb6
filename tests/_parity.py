"""The one parity test body (parity with the local oracle, docs/development.md), run against every backend's
workers: forked gloo ranks (``tests/dist/test_parity.py``) and Ray actors (``tests/ray/test_ray_parity.py``).

``check_parity(case, tmp_path, run_workers)`` runs a case in W workers (``run_workers(cfg, body)``: the
workers' results in rank order) and, in the test process, on ``LocalMixer``:

1. ``compute_gradients(0)`` before any optimizer step: the Lagrangian, every parameter's ``.grad``
   and the merged ledger of that one forward + backward;
2. N = 3 meta-training steps (``Trainer.train_step``): the Lagrangian of each step and the final
   parameters (every rank's, so ranks that drift apart are caught too).

Values agree to 1e-10 (float64) or 1e-5 (float32) relative to the oracle's largest magnitude, except
final parameters, compared in relative L2 norm (float64 to 1e-10, float32 to 1e-4; float64 max-abs gaps
reach ~1.2e-10 with dropout and agent-batch normalisation): Adam turns a gradient entry near its
eps (1e-8) into a step of about lr·g/(|g| + eps), so float32 rounding noise of 1e-8 in such an entry
(a different summation order, nothing the backend does wrong) moves that parameter by ~1e-4·lr per
step; measured max-abs gaps are ~1e-3 after 3 steps while every gradient agrees to ~3e-7. The
ledger: logical messages of a round equal Σ over live senders of their degree (K·L·2|E| per forward
without silent agents) and equal the oracle's count in every direction; physical bytes of a round equal
the halo-plan rows of live senders × D × itemsize, in both directions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from surf_dist.comm.local import LocalMixer
from surf_dist.config import Config, load_config, replace
from surf_dist.graph import halo_plan, traffic_per_round
from surf_dist.worker.evaluate import evaluate
from surf_dist.worker.exchanges import Exchanges
from surf_dist.worker.problem import Problem
from surf_dist.worker.timing import with_deadline
from surf_dist.worker.trainer import Trainer

RunWorkers = Callable[[Config, Callable[[Trainer], Any]], list[Any]]

NUM_STEPS = 3
TOLERANCE = {"float64": 1e-10, "float32": 1e-5}
FLOAT32_FINAL_PARAM_L2 = 1e-4  # see the module docstring
# A gradient that is mathematically zero (the bias in front of the agent-batch normalisation) is rounding
# noise (~1e-17); such a tensor is compared on the scale of a millionth of the largest gradient entry.
GRADIENT_FLOOR = 1e-6
# small and fast: 8 agents (digits, D = 650), L = 2, K = 2, 3 steps; cases change what they test
BASE = [
    "data.num_meta_train=3",
    "data.num_meta_val=1",
    "data.num_meta_test=2",
    "data.num_train=10",
    "data.num_heldout=5",
    "model.num_layers=2",
    "model.batch_size=3",
    'eval.baselines=["dgd","dsgd","dfedavgm"]',
    "eval.rounds_factor=2",
]


@dataclass(frozen=True)
class Case:
    name: str
    num_workers: int
    overrides: tuple[str, ...] = ()
    dtype: str = "float64"
    isolated_worker: int | None = None  # a worker that exchanges nothing (checked on the halo plan)


def _isolated_rank_graph(tmp_path: Path) -> str:
    """9 agents, contiguous on 3 workers {0-2} {3-5} {6-8}: a 6-ring over workers 0 and 1 and a triangle
    that worker 2 hosts alone, so worker 2 has no cross-worker edge (no peer, empty halo)."""
    edges = [(i, (i + 1) % 6) for i in range(6)] + [(6, 7), (7, 8), (6, 8)]
    doc = {
        "directed": False,
        "nodes": [{"id": i} for i in range(9)],
        "edges": [{"source": u, "target": v} for u, v in edges],
    }
    path = tmp_path / "isolated_rank.json"
    path.write_text(json.dumps(doc))
    return str(path)


STAR = (
    "topology.spec=star:n=9",
    "model.variant=star",
    "model.num_hops=1",
    "model.uploads_per_round=3",
    'eval.baselines=["fedavg"]',
)
EVERY_DECENTRALIZED = (
    'eval.baselines=["dgd","dsgd","dfedavgm","gt","extra","nids","choco","pushsum","local","centralised"]',
    "topology.spec=kregular:n=12,degree=3",
    "topology.placement=mincut",
)
EVERY_STAR = 'eval.baselines=["fedavg","fedprox","scaffold","feddyn","moon","local","centralised"]'
CASES = [
    Case("w1", 1),
    Case("w2", 2),
    Case("w3", 3),
    Case("w4", 4),
    Case("w2-float32", 2, dtype="float32"),
    Case("w3-float32", 3, dtype="float32"),
    # a relabelled 12-agent 3-regular graph: mincut placements interleave agent ids across workers
    Case("mincut-w2", 2, ("topology.spec=kregular:n=12,degree=3", "topology.placement=mincut")),
    Case("mincut-w3", 3, ("topology.spec=kregular:n=12,degree=3", "topology.placement=mincut")),
    Case(
        "isolated-rank-w3",
        3,
        ("topology.spec=@isolated", "topology.allow_disconnected=true"),
        isolated_worker=2,
    ),
    Case("agent-per-worker-w4", 4, ("topology.spec=ring:n=4",)),
    Case("silent-zero-w2", 2, ("failures.num_async=1", "failures.semantics=zero")),
    Case("silent-stale-w2", 2, ("failures.num_async=1", "failures.semantics=stale")),
    Case(
        "silent-stale-w3",
        3,
        (
            "failures.num_async=2",
            "failures.semantics=stale",
            "topology.spec=kregular:n=12,degree=3",
            "topology.placement=mincut",
        ),
    ),
    Case("agent-batch-w2", 2, ("model.normalisation=agent-batch",)),
    Case("agent-batch-silent-w3", 3, ("model.normalisation=agent-batch", "failures.num_async=1")),
    # network stragglers: agents whose messages miss the deadline are silent, decided by each worker alone
    Case(
        "deadline-stale-w3",
        3,
        (
            "network.latency_ms=10",
            "network.link_spread=1.0",
            "network.deadline_ms=14",
            "failures.semantics=stale",
            "topology.spec=kregular:n=12,degree=3",
            "topology.placement=mincut",
        ),
    ),
    # per-layer recomputation re-runs halo exchanges and all-reduces inside the backward
    Case(
        "recompute-stale-agent-batch-w3",
        3,
        (
            "model.recompute=on",
            "model.normalisation=agent-batch",
            "failures.num_async=2",
            "failures.semantics=stale",
            "topology.spec=kregular:n=12,degree=3",
            "topology.placement=mincut",
        ),
    ),
    # the star variant: a server that only aggregates, 3 of 8 clients uploading per round, drawn per round
    Case("star-w2", 2, STAR),
    Case("star-silent-w3", 3, (*STAR, "failures.num_async=1")),
    # every decentralized method (two exchanges a round for gt, q-bit messages for choco, push-sum's weight)
    # with a silent agent, on interleaved placements, and the meta-test tasks evaluated as one batch
    Case("methods-silent-w3", 3, (*EVERY_DECENTRALIZED, "failures.num_async=1", "eval.choco_compression=qbits:4")),
    Case("methods-batched-w2", 2, (*EVERY_DECENTRALIZED, "eval.batch_tasks=2", "eval.choco_compression=top_k:0.25")),
    Case("star-methods-w3", 3, (*STAR[:-1], EVERY_STAR, "failures.num_async=1")),
    Case("star-methods-batched-w2", 2, (*STAR[:-1], EVERY_STAR, "eval.batch_tasks=2")),
    # networks that change every round: U-DGD (forward, backward, recomputation) and every method on round graphs
    Case("link-failure-w2", 2, (*EVERY_DECENTRALIZED, "topology.dynamic=link-failure", "topology.link_failure_p=0.3")),
    Case(
        "link-failure-self-recompute-w3",
        3,
        (
            *EVERY_DECENTRALIZED,
            "topology.dynamic=link-failure",
            "topology.link_failure_p=0.3",
            "topology.link_repair=self",
            "model.recompute=on",
            "failures.num_async=1",
            "eval.batch_tasks=2",
        ),
    ),
    Case("resample-w3", 3, (*EVERY_DECENTRALIZED, "topology.dynamic=resample", "network.latency_ms=5")),
    Case(
        "one-peer-w4",
        4,
        (*EVERY_DECENTRALIZED[:1], "topology.spec=exponential:n=16", "topology.dynamic=exponential-one-peer"),
    ),
]


def _config(case: Case, tmp_path: Path) -> Config:
    overrides = [
        o.replace("@isolated", _isolated_rank_graph(tmp_path)) if "@isolated" in o else o for o in case.overrides
    ]
    return load_config("smoke", None, [*BASE, f"model.dtype={case.dtype}", *overrides])


def observe(trainer: Trainer) -> dict:
    """What parity compares, from one worker (collective: every worker must call it)."""
    lag0, _, _ = trainer.compute_gradients(0)
    grads0 = {name: p.grad.detach().clone().numpy() for name, p in trainer.model.named_parameters()}
    ledger = trainer.mixer.merged_ledger()  # the ledger of exactly one forward + backward
    counts = None if ledger is None else {k: v.copy() for k, v in ledger.counts.items()}
    losses = [trainer.train_step()["lagrangian"] for _ in range(NUM_STEPS)]
    params = {name: p.detach().clone().numpy() for name, p in trainer.model.named_parameters()}
    ev = evaluate(trainer, trainer.model)  # U-DGD per layer and every method per round, value by value
    curves = {"udgd accuracy": ev.udgd.accuracy_per_layer, "udgd loss": ev.udgd.loss_per_layer}
    curves["udgd seconds"] = ev.udgd.time_s
    for name, method in ev.baselines.items():
        curves[f"{name} accuracy"], curves[f"{name} seconds"] = method.accuracy, method.time_s
        curves[f"{name} bytes"] = method.agent_bytes
    return {
        "eval": curves,
        "lag0": float(lag0),
        "grads0": grads0,
        "counts": counts,
        "losses": losses,
        "params": params,
        "agents": trainer.mixer.agents.copy(),
    }


def _assert_close(
    name: str, got: np.ndarray, want: np.ndarray, tol: float, norm: str = "max", floor: float = 1e-30
) -> None:
    """max |got − want| / max |want| ≤ tol (``norm="max"``), or ‖got − want‖₂ / ‖want‖₂ ≤ tol (``"l2"``);
    the denominator is at least ``floor``."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{name}: shape {got.shape} vs oracle {want.shape}"
    if norm == "max":
        scale = max(float(np.abs(want).max(initial=0.0)), floor)
        gap = float(np.abs(got - want).max(initial=0.0)) / scale
    else:
        scale = max(float(np.linalg.norm(want)), floor)
        gap = float(np.linalg.norm(got - want)) / scale
    assert gap <= tol, f"{name}: relative {norm} gap {gap:.3e} > {tol:.0e} (oracle {norm} = {scale:.3e})"


def _round_keys(counts: dict, direction: str) -> dict[tuple[int, int], np.ndarray]:
    return {(layer, hop): row for (phase, d, layer, hop), row in counts.items() if phase == "train" and d == direction}


def _check_ledger(cfg: Config, oracle: Trainer, counts: dict, oracle_counts: dict, num_workers: int) -> None:
    """Logical counts: Σ live senders' degrees per round, equal to the oracle's; physical: live halo rows."""
    problem = oracle.problem
    graph = problem.graph("meta-train", 0).graph  # step 0 is meta-train task 0
    num_layers, num_hops = cfg.model.num_layers, cfg.model.num_hops
    itemsize = torch.empty(0, dtype=problem.dtype).element_size()
    row_bytes = problem.dim * itemsize
    plan = halo_plan(graph, problem.placement(num_workers))
    physical_all_live = traffic_per_round(graph, plan, problem.dim, itemsize)["physical"]["bytes"]
    injected = oracle.silent.layers("train", 0, num_layers)
    num_bytes = problem.dim * problem.dtype.itemsize
    layers = with_deadline(oracle.network, graph, num_bytes, "train", 0, injected, num_layers)
    # who sends nothing in each layer: the silent agents and, on a star, the clients that do not upload
    quiet = Exchanges(layers, oracle.uploads("train", 0)).muted_layers(num_layers)
    silent = None if quiet is None else [s.mask(torch.arange(problem.num_agents)) for s in quiet]

    forward = _round_keys(counts, "forward")
    assert sorted(forward) == [(layer, hop) for layer in range(1, num_layers + 1) for hop in range(1, num_hops + 1)]
    total = every_edge = missing = 0
    for (layer, hop), (messages, nbytes, _, physical_bytes) in forward.items():
        # the round's own graph on a changing network (its halo plan over the same placement)
        r = (layer - 1) * num_hops + hop
        round_graph = problem.round_graph("meta-train", 0, "train", 0, r)[1].graph
        round_plan = halo_plan(round_graph, problem.placement(num_workers))
        degree_N = round_graph.degree
        live_N = np.ones(problem.num_agents, dtype=bool) if silent is None else ~silent[layer - 1].numpy()
        want = int(degree_N[live_N].sum())
        assert messages == want, f"forward layer {layer} hop {hop}: {messages} logical messages, want {want}"
        assert nbytes == want * row_bytes
        live_rows = sum(int(live_N[rows].sum()) for rows in round_plan.send.values())
        assert physical_bytes == live_rows * row_bytes, (
            f"forward layer {layer} hop {hop}: {physical_bytes} physical bytes, want {live_rows} rows × {row_bytes}"
        )
        if silent is None and not problem.dynamic:
            assert physical_bytes == physical_all_live
        total += messages
        every_edge += round_graph.num_directed_edges
        missing += int(degree_N[~live_N].sum())
    if silent is None:
        assert total == every_edge
        if not problem.dynamic:
            assert total == num_hops * num_layers * 2 * graph.number_of_edges()
    else:  # the silent agents' messages are exactly what is missing
        assert total == every_edge - missing and missing > 0

    # the backward sends the gradients of exactly the forward's received rows back
    for key, row in _round_keys(counts, "backward").items():
        assert row[3] == forward[key][3], f"backward {key}: {row[3]} physical bytes, forward sent {forward[key][3]}"

    # logical traffic does not depend on the backend or the number of workers
    # (rows of physical-only traffic, the ``params`` and ``scalars`` all-reduces, have no logical part)
    logical = {k: tuple(int(x) for x in v[:2]) for k, v in counts.items() if v[:2].any()}
    want_logical = {k: tuple(int(x) for x in v[:2]) for k, v in oracle_counts.items() if v[:2].any()}
    assert logical == want_logical
    assert all(int(v[3]) == 0 for v in oracle_counts.values()), "the local backend sends no physical bytes"
    if num_workers == 1:
        assert all(int(v[3]) == 0 for v in counts.values()), "one worker sends nothing over a process boundary"


def _check_evaluation(rank: int, got: dict, want: dict, case: Case, problem: Problem) -> None:
    """Evaluation (U-DGD per layer, every method per round, their simulated seconds) equals the oracle's. In
    float32 an argmax near a tie may flip between summation orders: accuracies then agree to two samples."""
    assert got.keys() == want.keys(), f"rank {rank} evaluated {sorted(got)}, the oracle {sorted(want)}"
    evaluated = {k.removesuffix(" accuracy") for k in want if k.endswith(" accuracy")} - {"udgd"}
    assert evaluated == set(problem.cfg.eval.baselines), f"the oracle evaluated {sorted(evaluated)}"
    num_samples = problem.num_agents * problem.cfg.data.num_heldout * problem.cfg.data.num_meta_test
    for key, values in want.items():
        tol = TOLERANCE[case.dtype]
        if case.dtype == "float32" and key.endswith("accuracy"):
            assert np.abs(np.array(got[key]) - np.array(values)).max() <= 2 / num_samples + 1e-12, f"rank {rank} {key}"
            continue
        _assert_close(f"rank {rank} evaluation: {key}", np.array(got[key]), np.array(values), tol, floor=1e-12)


def worker_config(cfg: Config, num_workers: int, timeout_s: float = 30.0) -> Config:
    """``cfg`` for ``num_workers`` torch workers, one thread each, with a short process-group timeout."""
    return replace(
        cfg, run={"backend": "torch", "workers": num_workers, "timeout_s": timeout_s, "threads_per_worker": 1}
    )


def check_parity(case: Case, tmp_path: Path, run_workers: RunWorkers) -> None:
    """Run ``case`` on ``run_workers`` and on the local oracle; assert values, gradients, final parameters
    (elementwise, on every worker) and the ledger agree."""
    # Prepare: the oracle first (its imports and dataset load are then shared by the forked ranks)
    cfg = _config(case, tmp_path)
    problem = Problem(cfg)
    oracle_trainer = Trainer(cfg, LocalMixer(problem.num_agents, semantics=cfg.failures.semantics), problem)
    oracle = observe(oracle_trainer)
    assert case.num_workers <= problem.num_agents
    if case.isolated_worker is not None:
        plan = halo_plan(problem.graph("meta-train", 0).graph, problem.placement(case.num_workers))
        assert plan.neighbours_of(case.isolated_worker) == [], "the case lost its isolated worker"

    # Execute
    ranks = run_workers(worker_config(cfg, case.num_workers), observe)

    # Assert
    tol = TOLERANCE[case.dtype]
    largest_grad = max(float(np.abs(g).max()) for g in oracle["grads0"].values())
    hosted = np.sort(np.concatenate([r["agents"] for r in ranks]))
    assert np.array_equal(hosted, np.arange(problem.num_agents)), "the ranks do not host every agent exactly once"
    for rank, got in enumerate(ranks):
        _assert_close(f"rank {rank} Lagrangian of step 0", np.array(got["lag0"]), np.array(oracle["lag0"]), tol)
        assert set(got["grads0"]) == set(oracle["grads0"])
        for name, grad in oracle["grads0"].items():
            _assert_close(
                f"rank {rank} step-0 gradient of {name}",
                got["grads0"][name],
                grad,
                tol,
                floor=GRADIENT_FLOOR * largest_grad,
            )
        _assert_close(f"rank {rank} Lagrangian per step", np.array(got["losses"]), np.array(oracle["losses"]), tol)
        for name, param in oracle["params"].items():
            if case.dtype == "float64":  # Adam's eps effect (see above) in float64: relative L2, still 1e-10
                _assert_close(f"rank {rank} final {name}", got["params"][name], param, tol, "l2")
            else:
                _assert_close(f"rank {rank} final {name}", got["params"][name], param, FLOAT32_FINAL_PARAM_L2, "l2")
            # identical updates of identical reduced values: the workers' parameters agree bit for bit
            assert np.array_equal(got["params"][name], ranks[0]["params"][name]), f"rank {rank} drifted: {name}"
        _check_evaluation(rank, got["eval"], oracle["eval"], case, problem)
    assert oracle["losses"][0] == pytest.approx(oracle["lag0"], rel=tol), "compute_gradients(0) is not step 0"
    assert all(r["counts"] is None for r in ranks[1:]), "only the coordinator holds the merged ledger"
    _check_ledger(cfg, oracle_trainer, ranks[0]["counts"], oracle["counts"], case.num_workers)
