"""Scale: sparse products equal to dense ones, the per-edge ledger against the analytic count on 5,000 agents,
per-layer recomputation equal to the plain path, and a 10,000-agent run of two steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from surf_dist.comm.local import LocalMixer
from surf_dist.comm.operator import RowsOperator
from surf_dist.config import load_config
from surf_dist.core.filters import graph_filter
from surf_dist.graph import build_graph, shift_matrix
from surf_dist.worker.evaluate import evaluate
from surf_dist.worker.problem import Problem
from surf_dist.worker.silent import SilentIds
from surf_dist.worker.trainer import Trainer

SMALL = ["data.num_meta_train=3", "data.num_meta_val=1", "data.num_meta_test=1", "data.num_train=10"]


@pytest.mark.parametrize("normalisation", ["row", "spectral", "metropolis"])
def test_sparse_products_and_gradients_equal_dense(normalisation: str) -> None:
    """Catches a sparse S (or its transpose in the backward) that differs from the dense one."""
    graph = build_graph("random:n=300,p=0.02", seed=3)
    shift = shift_matrix(graph, normalisation)
    kwargs = {"dtype": torch.float64, "device": torch.device("cpu")}
    dense = RowsOperator(shift.indptr, shift.indices, shift.values, 300, dense=True, **kwargs)
    sparse = RowsOperator(shift.indptr, shift.indices, shift.values, 300, dense=False, **kwargs)
    assert dense.dense and not sparse.dense
    x = torch.randn(300, 7, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(300, 7, dtype=torch.float64)
    outputs, grads = [], []
    for op in (dense, sparse):
        y = op @ (op @ x)  # two rounds
        (y * weights).sum().backward()
        outputs.append(y.detach())
        grads.append(x.grad.clone())
        x.grad = None
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-12, atol=1e-12)
    s = shift.to_dense()
    torch.testing.assert_close(outputs[0], s @ (s @ x.detach()), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grads[0], s.T @ (s.T @ weights), rtol=1e-12, atol=1e-12)


def test_per_edge_ledger_matches_analytic_count_on_5000_agents() -> None:
    """Catches per-edge counters that drift from K·Σ out-degree (forward, backward, silent senders)."""
    graph = build_graph("random:n=5000,p=0.002", seed=0)
    mixer = LocalMixer(5000)
    mixer.set_graph(graph, shift_matrix(graph))
    assert not mixer.operator(torch.float32).dense  # the sparse path
    silent_ids = np.array([3, 77, 4999])
    w = torch.randn(5000, 4, requires_grad=True)
    taps = torch.tensor([0.2, 0.3, 0.5])
    graph_filter(mixer, w, taps, layer=1).sum().backward()  # K = 2 rounds, all live, forward and backward
    graph_filter(mixer, w.detach(), taps, layer=2, silent=SilentIds(silent_ids))
    directed, degree = 2 * graph.number_of_edges(), graph.degree
    t = mixer.ledger.totals(direction="forward")
    assert t["logical_messages"] == 2 * directed + 2 * (directed - int(degree[silent_ids].sum()))
    assert t["logical_bytes"] == t["logical_messages"] * 4 * 4
    assert mixer.ledger.totals(direction="backward")["logical_messages"] == 2 * directed
    sender, receiver, counts = mixer.ledger.edge_messages()
    assert len(sender) == directed  # every directed edge, once
    assert set(zip(sender.tolist(), receiver.tolist())) == set(zip(graph.u.tolist(), graph.v.tolist())) | set(
        zip(graph.v.tolist(), graph.u.tolist())
    )
    want_forward = np.where(np.isin(sender, silent_ids), 2, 4)
    assert np.array_equal(counts[:, 0], want_forward) and np.all(counts[:, 1] == 2)
    assert int(counts[:, 0].sum()) == t["logical_messages"]


@pytest.mark.parametrize("semantics", ["zero", "stale"])
def test_recomputation_equals_the_plain_path(semantics: str) -> None:
    """Catches recomputed layers that differ from the first forward (stale state, dropout, agent-batch
    all-reduces) or that count their messages twice."""
    overrides = [
        *SMALL,
        "model.num_layers=3",
        "model.dtype=float64",
        "model.normalisation=agent-batch",
        "failures.num_async=2",
        f"failures.semantics={semantics}",
    ]
    runs = {}
    for recompute in ("off", "on"):
        cfg = load_config("smoke", None, [*overrides, f"model.recompute={recompute}"])
        problem = Problem(cfg)
        trainer = Trainer(cfg, LocalMixer(problem.num_agents, semantics=semantics), problem)
        assert trainer.recompute == (recompute == "on")
        lag, slacks, _ = trainer.compute_gradients(0)
        grads = {name: p.grad.clone() for name, p in trainer.model.named_parameters()}
        counts = {k: tuple(int(c) for c in v[:2]) for k, v in trainer.mixer.ledger.counts.items() if v[:2].any()}
        losses = [trainer.train_step()["lagrangian"] for _ in range(2)]
        runs[recompute] = (lag, slacks, grads, counts, losses)
    plain, recomputed = runs["off"], runs["on"]
    assert float(recomputed[0]) == float(plain[0])
    assert torch.equal(recomputed[1], plain[1])
    for name, grad in plain[2].items():
        torch.testing.assert_close(recomputed[2][name], grad, rtol=1e-12, atol=1e-14, msg=name)
    assert recomputed[3] == plain[3]  # logical messages and bytes: each sent once
    assert recomputed[4] == pytest.approx(plain[4], rel=1e-12)


@pytest.mark.timeout(240)
def test_ten_thousand_agents_two_steps_and_an_evaluation() -> None:
    """Catches an n × n structure or a per-agent loop that makes 10,000 agents impossible in the suite."""
    cfg = load_config(
        "default",
        None,
        [
            *SMALL,
            "topology.spec=kregular:n=10000,degree=3",
            "model.num_layers=2",
            "eval.baselines=dgd",
            "eval.rounds_factor=1",
            "failures.num_async=5",
        ],
    )
    problem = Problem(cfg)
    trainer = Trainer(cfg, LocalMixer(problem.num_agents), problem)
    rows = [trainer.train_step() for _ in range(2)]
    assert all(np.isfinite(r["lagrangian"]) for r in rows)
    assert trainer.history.silent_agent_layers == 2 * 2 * 5
    ev = evaluate(trainer, trainer.model).to_dict()
    assert len(ev["udgd"]["accuracy_per_layer"]) == 3 and ev["udgd"]["silent_agent_layers"] == 2 * 5
    directed = 2 * problem.base_graph.number_of_edges()
    train = trainer.mixer.ledger.totals(phase_prefix="train", direction="forward")["logical_messages"]
    degree_sum_silent = 0  # the silent agents of each (step, layer) send nothing
    for step in range(2):
        graph = problem.graph("meta-train", step).graph
        for s in trainer.silent.layers("train", step, 2) or []:
            degree_sum_silent += int(graph.degree[s.mask(torch.arange(10000))].sum())
    assert train == 2 * 2 * 2 * directed - 2 * degree_sum_silent  # steps × layers × K rounds, less the silent


def test_entry_points_run_with_the_lean_allocator(monkeypatch: pytest.MonkeyPatch) -> None:
    """Catches entry points that keep glibc's growing heap (twice the memory at 10,000 agents), or that
    override a user's own GLIBC_TUNABLES."""
    from surf_dist.runtime import malloc

    assert malloc.lean_env({})["GLIBC_TUNABLES"] == malloc.TUNABLES
    assert (
        malloc.lean_env({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2"
    )
    assert "GLIBC_TUNABLES" not in malloc.lean_env({"SURF_DIST_MALLOC": "default"})
    calls = []
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    monkeypatch.delenv("SURF_DIST_MALLOC", raising=False)
    monkeypatch.setattr(malloc.os, "execve", lambda path, argv, env: calls.append((argv, env["GLIBC_TUNABLES"])))
    monkeypatch.setattr(malloc.sys, "argv", ["surf-dist", "train", "--out", "x"])
    malloc.reexec_with_lean_malloc()
    assert not calls  # main() called from Python (a test, a notebook) never replaces its process
    monkeypatch.setattr(malloc, "PROGRAM", True)  # the surf-dist program itself
    malloc.reexec_with_lean_malloc()
    assert calls and calls[0][0][1:] == ["-m", "surf_dist", "train", "--out", "x"] and calls[0][1] == malloc.TUNABLES
    monkeypatch.setenv("GLIBC_TUNABLES", malloc.TUNABLES)
    malloc.reexec_with_lean_malloc()  # already set: no second re-execution
    assert len(calls) == 1
