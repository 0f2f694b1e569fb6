"""The network model: simulated seconds against their closed forms, deadlines that silence exactly the late
agents, and the ledger's kinds of traffic, each breakdown summing to its total."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch
from _ledger_checks import check_breakdowns

from surf_dist.comm.local import LocalMixer
from surf_dist.config import load_config
from surf_dist.network.model import NetworkModel
from surf_dist.rundir.costs import with_costs
from surf_dist.worker.evaluate import evaluate
from surf_dist.worker.exchanges import Exchanges
from surf_dist.worker.problem import Problem
from surf_dist.worker.timing import network_model
from surf_dist.worker.trainer import Trainer

FAST = ["data.num_meta_train=2", "data.num_meta_val=1", "data.num_meta_test=2", "eval.rounds_factor=2"]


def _evaluate(*overrides: str) -> tuple[dict, Trainer]:
    cfg = load_config("smoke", None, [*FAST, *overrides])
    problem = Problem(cfg)
    trainer = Trainer(cfg, LocalMixer(problem.num_agents, semantics=cfg.failures.semantics), problem)
    ev = with_costs(evaluate(trainer, trainer.model), trainer.mixer.ledger, cfg.eval.target_accuracy)
    return ev.to_dict(), trainer


@pytest.mark.parametrize(("latency_ms", "bandwidth_mbps", "compute_ms"), [(50, 10, 0), (3, 0, 0), (0, 100, 7)])
def test_uniform_links_give_the_closed_form(latency_ms: float, bandwidth_mbps: float, compute_ms: float) -> None:
    """Catches simulated seconds that are not l·K·(latency + D·itemsize·8 / bandwidth) (+ one update per layer)
    for U-DGD, and r·(latency + bits / bandwidth) (+ one update per round) for DGD."""
    ev, trainer = _evaluate(
        f"network.latency_ms={latency_ms}",
        f"network.bandwidth_mbps={bandwidth_mbps}",
        f"network.compute_ms={compute_ms}",
    )
    cfg, dim = trainer.cfg, trainer.problem.dim
    bits = dim * 4 * 8
    message = latency_ms / 1e3 + (bits / (bandwidth_mbps * 1e6) if bandwidth_mbps else 0.0)
    layer = cfg.model.num_hops * message + compute_ms / 1e3
    want = [layer * i for i in range(cfg.model.num_layers + 1)]
    assert ev["udgd"]["time_s"] == pytest.approx(want, rel=1e-9, abs=1e-12)
    for name in ("dgd", "dsgd"):
        rounds = ev["baselines"][name]["rounds"]
        want = [(message + compute_ms / 1e3) * r for r in rounds]
        assert ev["baselines"][name]["time_s"] == pytest.approx(want, rel=1e-9, abs=1e-12)
    q = cfg.eval.params["dfedavgm"]["local_steps"]
    want = [(message + q * compute_ms / 1e3) * r for r in ev["baselines"]["dfedavgm"]["rounds"]]
    assert ev["baselines"]["dfedavgm"]["time_s"] == pytest.approx(want, rel=1e-9, abs=1e-12)
    assert ev["udgd"]["deadline_misses_per_layer"] == [0] * cfg.model.num_layers


def test_no_network_means_zero_time_and_bytes_still_counted() -> None:
    """Catches time that appears without a network model, or bytes curves that do not follow the ledger."""
    ev, trainer = _evaluate()
    assert ev["udgd"]["time_s"] == [0.0] * (trainer.cfg.model.num_layers + 1)
    directed = 2 * trainer.problem.base_graph.number_of_edges()
    per_layer = trainer.cfg.model.num_hops * directed * trainer.problem.dim * 4
    assert ev["udgd"]["agent_bytes"] == pytest.approx([per_layer * i for i in range(trainer.cfg.model.num_layers + 1)])


def test_deadline_silences_exactly_the_late_agents_and_caps_the_round() -> None:
    """Catches late agents that still send, on-time agents that are silenced, misses not counted per layer, or
    rounds that last longer than the deadline."""
    overrides = ("network.latency_ms=10", "network.link_spread=1.0", "network.deadline_ms=14")
    ev, trainer = _evaluate(*overrides)
    cfg, graph = trainer.cfg, trainer.graph
    assert graph is not None
    model, n = trainer.network, trainer.problem.num_agents
    misses = ev["udgd"]["deadline_misses_per_layer"]
    assert sum(misses) > 0, "the spread should make some agents late"
    # the per-layer misses of the last meta-test task plus the first's, from the model directly
    want = np.zeros(cfg.model.num_layers, dtype=int)
    for t in range(cfg.data.num_meta_test):
        g = trainer.problem.graph("meta-test", t).graph
        for layer in range(1, cfg.model.num_layers + 1):
            want[layer - 1] += model.late(g, np.arange(n), trainer.problem.dim * 4, "test", t, layer).sum()
    assert misses == want.tolist()
    # every round is cut at the deadline: no layer lasts more than K deadlines
    steps = np.diff(ev["udgd"]["time_s"])
    assert np.all(steps <= cfg.model.num_hops * 0.014 + 1e-12) and np.all(steps > 0)
    # late agents send nothing: U-DGD's messages fall by their out-degrees
    full = cfg.model.num_layers * cfg.model.num_hops * 2 * graph.number_of_edges() * cfg.data.num_meta_test
    sent = trainer.mixer.ledger.totals(phase_prefix="eval/udgd", direction="forward")["logical_messages"]
    assert sent < full
    # the baselines meet the same deadline: DGD's late agents are silent in its rounds and send nothing
    dgd = ev["baselines"]["dgd"]
    assert dgd["deadline_misses"] > 0
    rounds = dgd["rounds"][-1]
    full_dgd = rounds * 2 * graph.number_of_edges() * cfg.data.num_meta_test
    sent_dgd = trainer.mixer.ledger.totals(phase_prefix="eval/dgd", direction="forward")["logical_messages"]
    assert sent_dgd < full_dgd
    on_time, _ = _evaluate()
    assert dgd["accuracy"] != on_time["baselines"]["dgd"]["accuracy"]


def test_link_factors_are_keyed_and_mean_one() -> None:
    """Catches per-link draws that depend on who asks, or a log-normal spread that shifts the mean."""
    model = NetworkModel(seed=3, num_agents=2000, latency_s=0.01, link_spread=0.5)
    senders, receivers = np.arange(2000).repeat(20), np.tile(np.arange(20), 2000)
    tau = model.link_seconds(senders, receivers, 0)
    again = model.link_seconds(senders[::7], receivers[::7], 0)
    assert np.array_equal(tau[::7], again)
    assert abs(tau.mean() / 0.01 - 1) < 0.02
    assert model.link_seconds(senders[:1], receivers[:1], 10**6)[0] == pytest.approx(tau[0])  # infinite bandwidth
    assert math.isinf(network_model(load_config("smoke"), 8).deadline_s)


@pytest.mark.parametrize("normalisation", ["none", "agent-batch"])
def test_every_breakdown_sums_to_its_total_local(normalisation: str) -> None:
    """Catches a ledger whose kinds, phases or directions do not add up, or agent physical above logical."""
    cfg = load_config("smoke", None, [*FAST, f"model.normalisation={normalisation}"])
    problem = Problem(cfg)
    trainer = Trainer(cfg, LocalMixer(problem.num_agents), problem)
    trainer.train_step()
    evaluate(trainer, trainer.model)
    check_breakdowns(trainer.mixer.ledger)


def test_emulation_holds_a_round_for_its_modelled_time() -> None:
    """Catches an emulator whose round time differs from the model's (receiver side, silent senders excluded)."""
    from surf_dist.graph import build_graph
    from surf_dist.network.emulator import Emulator

    graph = build_graph("ring:n=6", seed=0)
    model = NetworkModel(seed=0, num_agents=6, latency_s=0.02, bandwidth_bps=8e6, compute_s=0.005)
    emulator = Emulator(model)
    started = time.perf_counter()
    emulator.begin(graph, np.array([0, 1, 2]), "test", 0, 1, 2, 1, Exchanges(None))
    assert emulator.round_seconds(1, 1, 1000) == pytest.approx((0.02 + 0.001, 0.0))
    assert emulator.round_seconds(1, 2, 1000) == pytest.approx((0.02 + 0.001, 0.005))
    emulator.hold(1, 1, 1000)
    emulator.hold(1, 2, 1000)  # the last round of the last layer: its update is waited for too
    assert time.perf_counter() - started >= 2 * 0.021 + 0.005  # a lower bound only: the machine may be slower

    class NoOne:
        def mask(self, agents: torch.Tensor) -> torch.Tensor:
            return torch.ones_like(agents, dtype=torch.bool)

    emulator.begin(graph, np.array([0, 1, 2]), "test", 0, 1, 2, 1, Exchanges([NoOne()]))
    assert emulator.round_seconds(1, 2, 1000) == (0.0, 0.0)
