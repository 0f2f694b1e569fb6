"""Networks that change from round to round (``topology.dynamic``): known answers and the properties each kind
promises (``surf_dist.graph.dynamic``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from surf_dist.comm.local import LocalMixer
from surf_dist.config import load_config
from surf_dist.errors import InputError
from surf_dist.worker.problem import Problem


def _problem(*overrides: str) -> Problem:
    return Problem(load_config("smoke", None, ["model.dtype=float64", *overrides]))


def _dense(problem: Problem, r: int, phase: str = "train", step: int = 0) -> np.ndarray:
    return problem.round_graph("meta-train", 0, phase, step, r)[1].shift.scipy().toarray()


def test_one_peer_exponential_gossip_averages_exactly_in_log2_n_rounds() -> None:
    """Catches a one-peer schedule that repeats a peer, skips an offset or weighs a message other than 1/2: on
    n = 16 four rounds of gossip through the Mixer give every agent the exact average, three do not."""
    problem = _problem("topology.spec=exponential:n=16", "topology.dynamic=exponential-one-peer")
    mixer = LocalMixer(16)
    tg = problem.graph("meta-train", 0)
    mixer.set_graph(tg.graph, tg.shift)
    mixer.set_rounds(lambda layer, hop: (lambda k, g: (k, g.graph, g.shift))(*problem.round_graph(
        "meta-train", 0, "train", 0, layer)))  # fmt: skip
    x = torch.randn(16, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    mean = x.mean(0)
    for r in range(1, 5):
        x = mixer.shift(x, layer=r, hop=1)
        gap = float((x - mean).abs().max())
        assert (gap < 1e-12) == (r == 4), f"after {r} rounds the gap to the average is {gap:.2e}"
    for r in range(1, 5):  # each round: one message out and one in per agent, W_r = (I + P_r)/2
        graph = problem.round_graph("meta-train", 0, "train", 0, r)[1].graph
        assert np.array_equal(graph.degree, np.ones(16)) and np.array_equal(graph.in_degree, np.ones(16))
        w = _dense(problem, r)
        assert np.allclose(np.diag(w), 0.5) and np.allclose(w.sum(0), 1) and np.allclose(w.sum(1), 1)
    # the schedule cycles through the offsets 1, 2, 4, 8
    assert np.array_equal(_dense(problem, 5), _dense(problem, 1))


def test_link_failure_with_p_zero_is_the_static_graph_and_links_fail_at_rate_p() -> None:
    static = _problem("topology.spec=kregular:n=400,degree=6")
    none_fail = _problem("topology.spec=kregular:n=400,degree=6", "topology.dynamic=link-failure")
    for r in (1, 2, 7):
        assert np.array_equal(_dense(none_fail, r), static.graph("meta-train", 0).shift.scipy().toarray())
    p = 0.3
    failing = _problem("topology.spec=kregular:n=400,degree=6", "topology.dynamic=link-failure",
                       f"topology.link_failure_p={p}")  # fmt: skip
    edges = static.graph("meta-train", 0).graph.number_of_edges()
    kept = [failing.round_graph("meta-train", 0, "train", 0, r)[1].graph.number_of_edges() for r in range(1, 6)]
    sigma = np.sqrt(edges * p * (1 - p))
    assert all(abs((edges - k) - p * edges) < 4 * sigma for k in kept), (kept, edges)
    assert len(set(kept)) > 1, "every round drew the same failures"
    # keyed by position: the same round of the same pass fails the same links, another step others
    again = _problem("topology.spec=kregular:n=400,degree=6", "topology.dynamic=link-failure",
                     f"topology.link_failure_p={p}")  # fmt: skip
    assert np.array_equal(_dense(failing, 3), _dense(again, 3))
    assert not np.array_equal(_dense(failing, 3, step=0), _dense(failing, 3, step=1))


@pytest.mark.parametrize("repair", ["renormalise", "self"])
def test_link_repair_keeps_row_sums_and_sends_nothing_over_a_failed_link(repair: str) -> None:
    """Catches a failed link that still carries weight, or a repair that loses or invents mass: S_r has zeros
    exactly where links failed, rows sum to 1, and ``self`` differs from S only on failed links and the diagonal."""
    problem = _problem("topology.spec=kregular:n=30,degree=4", "topology.dynamic=link-failure",
                       "topology.link_failure_p=0.4", f"topology.link_repair={repair}")  # fmt: skip
    base = problem.graph("meta-train", 0)
    s = base.shift.scipy().toarray()
    round_graph = problem.round_graph("meta-train", 0, "train", 0, 2)[1]
    w = round_graph.shift.scipy().toarray()
    adjacency = round_graph.graph.adjacency().toarray() > 0
    off = ~np.eye(30, dtype=bool)
    assert np.all((w[off] != 0) == adjacency.T[off]), "S_r is nonzero exactly on the surviving links"
    assert base.graph.number_of_edges() > round_graph.graph.number_of_edges()
    assert np.allclose(w.sum(1), 1)
    if repair == "self":
        surviving = adjacency.T & off
        assert np.allclose(w[surviving], s[surviving])
        assert np.allclose(np.diag(w) - np.diag(s), (s * (off & ~surviving)).sum(1))
        column = round_graph.mixing("column").scipy().toarray()
        assert np.allclose(column.sum(0), 1), "column-stochastic mixing keeps its column sums"


def test_resample_draws_a_graph_per_layer_the_same_within_a_layer() -> None:
    problem = _problem("topology.dynamic=resample", "topology.spec=random:n=20,p=0.3")
    k = problem.cfg.model.num_hops
    assert k == 2
    first = _dense(problem, 1)
    assert np.array_equal(first, _dense(problem, 2)), "the K rounds of one layer share a graph"
    assert not np.array_equal(first, _dense(problem, 3)), "the next layer draws another"
    assert not np.array_equal(first, _dense(problem, 1, step=1)), "another step draws another"


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        (["topology.dynamic=exponential-one-peer"], "topology.spec=exponential:n=N"),
        (["topology.link_failure_p=0.2"], "topology.dynamic=link-failure"),
        (["topology.dynamic=link-failure", "failures.semantics=stale"], "failures.semantics=zero"),
        (["topology.dynamic=flicker"], "topology.dynamic = 'flicker': unknown"),
        (["topology.dynamic=link-failure", "topology.link_failure_p=1"], "topology.link_failure_p"),
        (["topology.dynamic=link-failure", "topology.link_repair=heal"], "topology.link_repair"),
    ],
)
def test_a_changing_network_that_cannot_work_is_refused_with_the_fix(overrides: list[str], words: str) -> None:
    with pytest.raises(InputError) as err:
        load_config("smoke", None, overrides)
    assert any(words in problem for problem in err.value.problems), err.value.problems
