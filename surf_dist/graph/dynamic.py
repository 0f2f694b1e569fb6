"""Networks that change from round to round (``topology.dynamic``): the graph and mixing matrix of round r of a
pass, as pure functions of keyed draws, so that every worker builds the same round graph without talking.

Rounds count from 1 over a whole pass: round r of U-DGD is hop k of layer l with r = (l − 1)·K + k; round r of a
method is its r-th round. The kinds:

* ``static``                the task's graph in every round.
* ``resample``              a fresh draw of ``topology.spec`` every K rounds (every U-DGD layer; a method the same
                            rounds), keyed by (seed, phase, step, block ⌊(r − 1)/K⌋).
* ``exponential-one-peer``  agent i sends to i + 2^((r − 1) mod τ) (mod n) only, τ = ⌈log₂ n⌉: the rounds walk
                            through the offsets of the static exponential graph (``topology.spec`` must be
                            ``exponential:n=N``). Every agent sends one message and receives one, so every
                            normalisation gives W_r = (I + P_r)/2, doubly stochastic; for n a power of two τ rounds
                            of gossip average exactly (W_τ ⋯ W_1 = 11ᵀ/n).
* ``link-failure``          each link of the task's graph fails in round r with probability p
                            (``topology.link_failure_p``), independently, keyed by (seed, phase, step, r, link); an
                            undirected link fails both ways. ``topology.link_repair``: ``renormalise`` builds S_r
                            from the surviving graph with the usual normalisation (row: each receiver re-weights
                            its surviving in-links); ``self`` keeps S and moves each failed link's weight onto the
                            diagonal (receivers keep their own value for it; for column-stochastic mixing the sender
                            does), so S_r keeps S's row (column) sums. With p = 0 every round is the static graph.

Every round graph is a subgraph of the task's graph (of the exponential graph for one-peer), except ``resample``'s.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..core.rng import hash_counters, keyed_seed
from .core import Graph
from .generators import exponential_peers
from .shift import ShiftOperator
from .spec import DYNAMICS, REPAIRS

__all__ = ["DYNAMICS", "REPAIRS", "link_key", "one_peer_graph", "repaired_self", "surviving_links", "without_links"]


def one_peer_graph(num_agents: int, r: int) -> Graph:
    """Round r's graph of the one-peer exponential schedule: i → i + 2^((r − 1) mod τ) (mod n), directed."""
    peers = exponential_peers(num_agents)
    offset = int(peers[(r - 1) % len(peers)])
    senders = np.arange(num_agents, dtype=np.int64)
    return Graph.from_edges(num_agents, senders, (senders + offset) % num_agents, directed=True)


def surviving_links(graph: Graph, p: float, key: int) -> np.ndarray:
    """E bools: which links of ``graph`` work this round (each fails with probability ``p``, by a hash of the
    link's ends, so any worker computes any link's fate alone). O(E)."""
    if p <= 0:
        return np.ones(graph.number_of_edges(), dtype=bool)
    links = graph.u.astype(np.int64) * graph.num_agents + graph.v
    u = (hash_counters(key, links) >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return u >= p


def link_key(seed: int, phase: str, step: int, r: int) -> int:
    """The key of round r's link failures in the pass (phase, step)."""
    return keyed_seed(seed, "link-failure", phase, step, r)


def without_links(graph: Graph, keep_E: np.ndarray) -> Graph:
    """``graph`` with only the links ``keep_E``."""
    return Graph(graph.num_agents, graph.u[keep_E], graph.v[keep_E], graph.weight[keep_E], directed=graph.directed)


def repaired_self(shift: ShiftOperator, failed: Graph, sender_side: bool) -> ShiftOperator:
    """S with the entries of the ``failed`` links zeroed and their weight moved onto the diagonal: of the receiver
    (row sums kept) or, ``sender_side``, of the sender (column sums kept, for column-stochastic mixing)."""
    if failed.number_of_edges() == 0:
        return shift
    s = shift.scipy()
    # the failed entries S_ij (j sends to i): both directions of an undirected link
    senders, receivers = failed.u, failed.v
    if not failed.directed:
        senders, receivers = np.concatenate([failed.u, failed.v]), np.concatenate([failed.v, failed.u])
    lost = np.asarray(s[receivers, senders]).ravel()
    n = shift.num_agents
    removed = sp.csr_array((lost, (receivers, senders)), shape=(n, n))
    keeper = senders if sender_side else receivers
    back = sp.csr_array((np.bincount(keeper, weights=lost, minlength=n), (np.arange(n), np.arange(n))), shape=(n, n))
    out = sp.csr_array(s - removed + back)
    out.eliminate_zeros()
    return ShiftOperator.from_scipy(out)
