"""Core math: the objective's gradient, the graph filter, the ledger's counts, constraints and duals."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch

from surf_dist.comm.local import LocalMixer
from surf_dist.core.constraints import (
    descent_slacks,
    dual_step,
    gradient_norms,
    lagrangian,
    local_gradient_square,
)
from surf_dist.core.filters import graph_filter
from surf_dist.core.objective import correct_per_agent, grad_per_agent, logits, loss_per_agent, model_dim
from surf_dist.core.sampling import batch_indices, dropout_keep, initial_iterate
from surf_dist.core.udgd import UDGD, batch_input
from surf_dist.graph import Graph, as_graph, build_graph, shift_matrix, shift_operator
from surf_dist.worker.silent import SilentIds

pytestmark = pytest.mark.usefixtures("float64_by_default")  # these tests compare to 1e-10


def _problem(num_agents=5, num_samples=7, num_features=4, num_classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(num_agents, num_samples, num_features, generator=g, dtype=torch.float64)
    y = torch.randint(num_classes, (num_agents, num_samples), generator=g)
    w = torch.randn(num_agents, model_dim(num_features, num_classes), generator=g, dtype=torch.float64)
    return w, x, y


def test_logits_layout_matches_weight_matrix_and_bias():
    """Catches a wrong reshape of w_i into its (P+1) × C weight matrix and bias row."""
    w, x, _ = _problem()
    w_apc = w.reshape(5, 5, 3)
    expected = torch.einsum("amp,apc->amc", x, w_apc[:, :4]) + w_apc[:, 4][:, None, :]
    torch.testing.assert_close(logits(w, x), expected)


def test_closed_form_gradient_matches_autograd():
    """Catches a wrong closed-form softmax-regression gradient (sign, scale, bias row)."""
    w, x, y = _problem()
    w.requires_grad_(True)
    loss_per_agent(w, x, y).sum().backward()
    torch.testing.assert_close(grad_per_agent(w.detach(), x, y), w.grad, rtol=1e-10, atol=1e-12)


def test_closed_form_gradient_matches_finite_differences():
    """Catches a gradient that agrees with autograd by accident but not with the loss itself."""
    w, x, y = _problem(num_agents=2)
    g = grad_per_agent(w, x, y)
    eps = 1e-6
    for i, j in [(0, 0), (1, 7), (0, 14)]:
        e = torch.zeros_like(w)
        e[i, j] = eps
        fd = (loss_per_agent(w + e, x, y)[i] - loss_per_agent(w - e, x, y)[i]) / (2 * eps)
        assert abs(fd.item() - g[i, j].item()) < 1e-7


def test_gradient_is_differentiable_for_the_meta_gradient():
    """Catches a closed-form gradient detached from w (the descent constraints would get no meta-gradient)."""
    w, x, y = _problem()
    w.requires_grad_(True)
    (grad_per_agent(w, x, y) ** 2).sum().backward()
    assert w.grad is not None and w.grad.abs().sum() > 0


def test_correct_counts():
    """Catches an accuracy that counts against the wrong axis."""
    w, x, y = _problem()
    pred = logits(w, x).argmax(-1)
    assert correct_per_agent(w, x, y).tolist() == (pred == y).sum(1).double().tolist()


def _mixer(graph: nx.Graph | Graph, normalisation="row"):
    graph = as_graph(graph)
    mixer = LocalMixer(graph.number_of_nodes())
    mixer.set_graph(graph, shift_matrix(graph, normalisation))
    return mixer, shift_operator(graph, normalisation)


@pytest.mark.parametrize("spec", ["ring:n=6", "kregular:n=8,degree=3", "star:n=5"])
def test_graph_filter_equals_dense_polynomial(spec):
    """Catches a filter that applies the wrong power of S to a tap or skips a hop."""
    graph = build_graph(spec, seed=1)
    mixer, s = _mixer(graph)
    w = torch.randn(graph.number_of_nodes(), 4)
    taps = torch.tensor([0.3, -0.7, 1.1])
    dense = taps[0] * w + taps[1] * (s @ w) + taps[2] * (s @ s @ w)
    torch.testing.assert_close(graph_filter(mixer, w, taps, layer=1), dense)


def test_ledger_matches_analytic_count_forward_and_backward():
    """Catches a ledger that miscounts messages per round (self-loops, directions, silent agents)."""
    graph = build_graph("kregular:n=8,degree=3", seed=0)
    mixer, _ = _mixer(graph)
    num_edges_directed = 2 * graph.number_of_edges()
    w = torch.randn(8, 5, requires_grad=True)
    out = graph_filter(mixer, w, torch.tensor([0.2, 0.3, 0.5]), layer=1)
    out.sum().backward()
    t = mixer.ledger.totals(direction="forward")
    assert t["logical_messages"] == 2 * num_edges_directed
    assert t["logical_bytes"] == 2 * num_edges_directed * 5 * 8
    assert mixer.ledger.totals(direction="backward")["logical_messages"] == 2 * num_edges_directed
    assert t["physical_bytes"] == 0
    # a silent agent sends nothing: the count falls by its out-degree, every hop
    silent = torch.zeros(8, dtype=torch.bool)
    silent[3] = True
    before = mixer.ledger.totals()["logical_messages"]
    graph_filter(
        mixer, w.detach(), torch.tensor([0.2, 0.3, 0.5]), layer=2, silent=SilentIds(torch.nonzero(silent).flatten())
    )
    assert mixer.ledger.totals()["logical_messages"] - before == 2 * (num_edges_directed - graph.degree[3])


def test_zero_and_stale_semantics():
    """Catches silent senders whose values still reach neighbours (zero) or are not reused (stale)."""
    graph = nx.path_graph(3)
    s = shift_operator(graph, "row")
    x1, x2 = torch.randn(3, 2), torch.randn(3, 2)
    silent = torch.tensor([True, False, False])
    for semantics in ("zero", "stale"):
        mixer = LocalMixer(3, semantics=semantics)
        mixer.set_graph(as_graph(graph), shift_matrix(graph, "row"))
        mixer.shift(x1, layer=1, hop=1)
        y = mixer.shift(x2, layer=2, hop=1, silent=SilentIds(torch.nonzero(silent).flatten()))
        fill = torch.zeros(2) if semantics == "zero" else x1[0]
        expected_row1 = s[1, 0] * fill + s[1, 1] * x2[1] + s[1, 2] * x2[2]
        torch.testing.assert_close(y[1], expected_row1)


def test_descent_slacks_both_forms_and_dual_step_by_hand():
    """Catches a wrong constraint form, a dual step that is not projected, or a Lagrangian sign error."""
    norms = torch.tensor([4.0, 2.0, 3.0])
    eps = 0.1
    torch.testing.assert_close(descent_slacks(norms, eps, "ratio"), torch.tensor([2 / 4 - 0.9, 3 / 2 - 0.9]))
    torch.testing.assert_close(descent_slacks(norms, eps, "difference"), torch.tensor([2 - 0.9 * 4, 3 - 0.9 * 2]))
    duals = torch.tensor([0.05, 0.0])
    slacks = torch.tensor([-0.4, 0.6])
    torch.testing.assert_close(dual_step(duals, slacks, 0.5), torch.tensor([0.0, 0.3]))
    loss = torch.tensor(1.5)
    assert lagrangian(loss, slacks, torch.tensor([2.0, 3.0]), True).item() == pytest.approx(1.5 - 0.8 + 1.8)
    assert lagrangian(loss, slacks, torch.tensor([2.0, 3.0]), False).item() == 1.5


def test_gradient_norms_are_global_frobenius_of_mean_objective():
    """Catches norms taken per agent, or of the summed instead of the averaged objective."""
    w, x, y = _problem(num_agents=4)
    mixer = LocalMixer(4)
    norms = gradient_norms(mixer, torch.stack([local_gradient_square(w, x, y), local_gradient_square(2 * w, x, y)]))
    w_ = w.clone().requires_grad_(True)
    loss_per_agent(w_, x, y).mean().backward()
    assert norms[0].item() == pytest.approx(w_.grad.norm().item(), rel=1e-10)


def test_batch_input_interleaves_examples():
    """Catches a mini-batch fed as [all features ‖ all labels] instead of example by example."""
    x = torch.arange(2 * 2 * 3, dtype=torch.float64).reshape(2, 2, 3)
    y = torch.tensor([[1, 0], [0, 1]])
    b = batch_input(x, y, 2)
    assert b.shape == (2, 2 * (3 + 2))
    assert b[0].tolist() == [0, 1, 2, 0, 1, 3, 4, 5, 1, 0]


def test_udgd_layer_equations_and_silent_agents_keep_their_iterate():
    """Catches a layer that is not H(W) − σ(M[w‖b] + d), or silent agents that update."""
    graph = build_graph("ring:n=4", seed=0)
    mixer, s = _mixer(graph)
    torch.manual_seed(0)
    model = UDGD(num_layers=1, num_hops=1, num_features=2, num_classes=2, batch_size=1).double()
    w = torch.randn(4, 6)
    x, y = torch.randn(4, 1, 2), torch.tensor([[0], [1], [0], [1]])
    out = model.layer(1, w, x, y, mixer)
    lin = model.updates[0].linears[0]
    z = torch.cat([w, batch_input(x, y, 2)], 1)
    expected = model.taps[0, 0] * w + model.taps[0, 1] * (s @ w) - torch.relu(lin(z))
    torch.testing.assert_close(out, expected)
    silent = torch.tensor([False, True, False, False])
    out_silent = model.layer(1, w, x, y, mixer, SilentIds(torch.nonzero(silent).flatten()))
    torch.testing.assert_close(out_silent[1], w[1])


def test_agent_batch_normalisation_records_allreduce_traffic():
    """Catches the non-local BatchNorm across agents going unrecorded in the ledger."""
    graph = build_graph("ring:n=4", seed=0)
    mixer, _ = _mixer(graph)
    model = UDGD(
        num_layers=1, num_hops=1, num_features=2, num_classes=2, batch_size=1, normalisation="agent-batch"
    ).double()
    model.layer(1, torch.randn(4, 6), torch.randn(4, 1, 2), torch.zeros(4, 1, dtype=torch.long), mixer)
    assert mixer.ledger.totals(direction="allreduce")["logical_messages"] == 3 * 4


def test_hosted_draws_equal_the_full_draw_sliced():
    """Catches draws that depend on which rows a worker hosts (workers would disagree), or keys that repeat."""
    full, hosted = torch.arange(10), torch.tensor([7, 2, 5])
    draws = {
        "w0": lambda a, step=5: initial_iterate(3, "train", step, a, 4, 1.0, torch.float64),
        "dropout": lambda a, step=5: dropout_keep(3, "train", step, 2, a, 6, 0.5, torch.float32),
        "batch": lambda a, step=5: batch_indices(3, "train", step, 2, a, 45, 10),
    }
    for name, draw in draws.items():
        assert torch.equal(draw(hosted), draw(full)[hosted]), name
        assert torch.equal(draw(full), draw(full)), name
        assert not torch.equal(draw(full), draw(full, step=6)), name
    big = torch.arange(20_000)
    w0 = initial_iterate(0, "train", 0, big, 50, 2.0, torch.float64)
    assert abs(float(w0.mean())) < 0.01 and abs(float(w0.std()) - 2.0) < 0.01
    keep = dropout_keep(0, "train", 0, 1, big, 50, 0.25, torch.float32)
    assert keep.unique().tolist() == pytest.approx([0.0, 1 / 0.75]) and abs(float(keep.mean()) - 1.0) < 0.01
    idx = batch_indices(0, "train", 0, 1, big, 45, 10)
    assert int(idx.min()) == 0 and int(idx.max()) == 44
    assert np.bincount(idx.flatten().numpy()).min() > 0.9 * idx.numel() / 45
