"""The methods against answers known in closed form (float64, tiny graphs): exact methods reach the optimum of a
strongly convex problem where DGD stalls at a bias of order β; gossip on W = γ11ᵀ/n + (1−γ)I contracts by exactly
1 − γ a round; push-sum on a directed ring reaches the average; CHOCO with the identity compressor is exact
gossip; the compressors encode what they say; each star method's round equals a hand computation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from surf_dist.comm.local import LocalMixer
from surf_dist.core.compression import Codec
from surf_dist.core.objective import grad_per_agent
from surf_dist.core.rounds import Blocks, RoundContext
from surf_dist.graph import Graph, ShiftOperator, build_graph, shift_matrix, star_shift
from surf_dist.methods.choco import Choco, ChocoParams
from surf_dist.methods.dgd import DGD, DGDParams
from surf_dist.methods.pushsum import PushSum, PushSumParams
from surf_dist.methods.star import (
    FedDyn,
    FedDynParams,
    FedProx,
    FedProxParams,
    Moon,
    MoonParams,
    Scaffold,
    ScaffoldParams,
)
from surf_dist.methods.tracking import NIDS, Extra, GradientTracking, TrackingParams
from surf_dist.worker.exchanges import Exchanges

pytestmark = pytest.mark.usefixtures("float64_by_default")  # these tests compare to 1e-10


class _Everybody:
    """A schedule without silent agents (optionally a star's uploads)."""

    def __init__(self, uploads: np.ndarray | None = None) -> None:
        self.uploads_per_round = 0 if uploads is None else len(uploads)
        self.exchanges = Exchanges(
            None, None if uploads is None else (lambda r: uploads), senders=("uploaders", "server")
        )

    def silent(self, r: int, num_bytes: int) -> None:
        return None

    def quiet(self, r: int, kind: str, silent: object) -> object:
        return self.exchanges.quiet_for(r, kind, None)


class _Quadratic(RoundContext):
    """Each agent's objective f_i(w) = ½ ‖A_i w − b_i‖² (a strongly convex sum with a known minimiser)."""

    def __init__(self, mixer: LocalMixer, method: object, a_ADD: torch.Tensor, b_AD: torch.Tensor) -> None:
        dummy = (torch.zeros(len(a_ADD), 1, 1), torch.zeros(len(a_ADD), 1, dtype=torch.long))
        super().__init__(
            mixer, method, dummy, seed=0, blocks=Blocks([0], len(a_ADD)), schedule=_Everybody(), num_classes=1
        )
        self.a_ADD, self.b_AD = a_ADD, b_AD

    def grad(self, w_AD: torch.Tensor, x: object = None, y: object = None) -> torch.Tensor:
        residual = torch.einsum("aij,aj->ai", self.a_ADD, w_AD) - self.b_AD
        return torch.einsum("aji,aj->ai", self.a_ADD, residual)


def _run(method: object, ctx: RoundContext, w0: torch.Tensor, rounds: int) -> torch.Tensor:
    state = method.init(ctx, w0)  # type: ignore[attr-defined]
    for r in range(1, rounds + 1):
        ctx.begin(r, w0.shape[1] * 8)
        state = method.round(ctx, state, r)  # type: ignore[attr-defined]
    return method.model(state)  # type: ignore[attr-defined]


def _mixer(graph: Graph, normalisation: str = "metropolis") -> LocalMixer:
    mixer = LocalMixer(graph.num_agents)
    mixer.set_graph(graph, shift_matrix(graph, normalisation))
    return mixer


def _quadratic(n: int = 6, d: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, d, d, generator=g) + 2 * torch.eye(d)
    b = torch.randn(n, d, generator=g)
    hessian = torch.einsum("aji,ajk->ik", a, a)
    optimum = torch.linalg.solve(hessian, torch.einsum("aji,aj->i", a, b))
    return a, b, optimum


@pytest.mark.parametrize(("cls", "step"), [(GradientTracking, 0.02), (Extra, 0.02), (NIDS, 0.04)])
def test_exact_methods_reach_the_optimum_where_dgd_stalls(cls: type, step: float) -> None:
    """Catches a gradient-tracking, EXTRA or NIDS update that is not exact (it would stall at DGD's bias)."""
    # Prepare
    a, b, optimum = _quadratic()
    graph = build_graph("ring:n=6", seed=0)
    w0 = torch.zeros(6, 3)

    # Execute
    exact = _run(
        cls(TrackingParams(step=step)), _Quadratic(_mixer(graph), cls(TrackingParams(step=step)), a, b), w0, 3000
    )
    dgd = _run(DGD(DGDParams(step=step)), _Quadratic(_mixer(graph), DGD(DGDParams(step=step)), a, b), w0, 3000)

    # Assert
    assert float((exact - optimum).abs().max()) < 1e-8
    bias = float((dgd - optimum).abs().max())
    assert 1e-4 < bias < 10 * step * float(optimum.abs().max() + 1), "DGD stops O(β) away from the optimum"


def test_gossip_contracts_by_exactly_one_minus_gamma() -> None:
    """Catches a shift that is not the product with W: on W = γ11ᵀ/n + (1−γ)I every disagreement shrinks by 1−γ."""
    n, gamma = 5, 0.3
    graph = build_graph(f"complete:n={n}", seed=0)
    w = gamma * np.ones((n, n)) / n + (1 - gamma) * np.eye(n)
    mixer = LocalMixer(n)
    mixer.set_graph(graph, ShiftOperator.from_scipy(sp.csr_array(w)))
    x = torch.randn(n, 4, generator=torch.Generator().manual_seed(1))
    method = DGD(DGDParams(step=1e-300))
    ctx = _Quadratic(mixer, method, torch.zeros(n, 4, 4), torch.zeros(n, 4))
    previous = x - x.mean(0)
    for _r in range(1, 6):
        x = _run(method, ctx, x, 1)
        now = x - x.mean(0)
        assert torch.allclose(now, (1 - gamma) * previous, atol=1e-14)
        previous = now


def test_push_sum_on_a_directed_ring_reaches_the_average() -> None:
    """Catches push-sum without its weights (on a directed ring, plain gossip would not reach the mean)."""
    graph = build_graph("directed_ring:n=5", seed=0)
    assert graph.directed
    mixer = _mixer(graph, "column")
    method = PushSum(PushSumParams(step=1e-300))
    x0 = torch.randn(5, 3, generator=torch.Generator().manual_seed(2))
    ctx = _Quadratic(mixer, method, torch.zeros(5, 3, 3), torch.zeros(5, 3))
    z = _run(method, ctx, x0, 300)
    assert torch.allclose(z, x0.mean(0).expand_as(z), atol=1e-10)
    # its messages carry D + 1 floats: the weight beside the iterate
    assert mixer.ledger.totals(direction="forward")["logical_bytes"] == 300 * 5 * (3 + 1) * 8


def test_choco_with_the_identity_compressor_is_exact_gossip() -> None:
    """Catches CHOCO's public copies drifting from the models when nothing is compressed."""
    graph = build_graph("ring:n=6", seed=0)
    x0 = torch.randn(6, 4, generator=torch.Generator().manual_seed(3))
    zero_a, zero_b = torch.zeros(6, 4, 4), torch.zeros(6, 4)
    choco = Choco(ChocoParams(step=1e-300, gamma=1.0, compression="identity"))
    gossip = DGD(DGDParams(step=1e-300))
    for rounds in (1, 5):
        got = _run(choco, _Quadratic(_mixer(graph), choco, zero_a, zero_b), x0, rounds)
        want = _run(gossip, _Quadratic(_mixer(graph), gossip, zero_a, zero_b), x0, rounds)
        assert torch.allclose(got, want, atol=1e-13)


@pytest.mark.parametrize("text", ["top_k:0.25", "qbits:3", "identity"])
def test_compressors_decode_what_they_encode_and_count_their_bytes(text: str) -> None:
    """Catches a compressor whose wire form loses values, or whose byte count is not values plus indices (top-k)
    or a norm plus packed levels (q-bit)."""
    codec = Codec.parse(text)
    x = torch.randn(7, 20, generator=torch.Generator().manual_seed(4))
    u = torch.rand(7, 20, generator=torch.Generator().manual_seed(5))
    parts = codec.encode(x, u)
    q = codec.decode(parts, 20)
    assert torch.equal(codec.decode(codec.rows(parts, torch.tensor([1, 4])), 20), q[[1, 4]])
    if text == "top_k:0.25":
        assert int((q != 0).sum(1).max()) == 5 and torch.equal(q[q != 0], x[q != 0])
        assert codec.message_bytes(20, 8) == 5 * (8 + 4)
    elif text == "qbits:3":
        levels = q / x.norm(dim=1, keepdim=True) * 7
        assert torch.allclose(levels, levels.round()) and torch.all(torch.sign(q) * torch.sign(x) >= 0)
        assert codec.message_bytes(20, 8) == 8 + (20 * 4 + 7) // 8
    else:
        assert torch.equal(q, x) and codec.message_bytes(20, 8) == 160
    with pytest.raises(ValueError, match="top_k:F"):
        Codec.parse("top_k:2")


# -- the star methods, one round by hand ------------------------------------------------------------------------
class _FullBatch(RoundContext):
    def batch(self, size: int, local_step: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        return self.train_x_AMP, self.train_y_AM


def _star(method: object) -> tuple[RoundContext, LocalMixer, torch.Tensor, torch.Tensor, torch.Tensor]:
    graph = build_graph("star:n=5", seed=0)
    mixer = LocalMixer(5)
    mixer.set_graph(graph, star_shift(graph, 2, "mean"))
    g = torch.Generator().manual_seed(6)
    w = torch.randn(1, 6, generator=g).expand(5, 6).clone()  # every client holds the server's model
    x, y = torch.randn(5, 3, 1, generator=g), torch.tensor([[0, 1, 2]] * 5)
    ctx = _FullBatch(
        mixer, method, (x, y), seed=0, blocks=Blocks([0], 5), schedule=_Everybody(np.array([2, 4])), num_classes=3
    )
    ctx.begin(1, 6 * 8)
    return ctx, mixer, w, x, y


def test_fedprox_round_by_hand() -> None:
    """Catches FedProx without its proximal pull towards the server's model."""
    method = FedProx(FedProxParams(step=0.5, local_steps=2, mu=0.7, batch=3))
    ctx, _, w, x, y = _star(method)
    out = method.round(ctx, {"w": w}, 1)["w"]
    y1 = w - 0.5 * grad_per_agent(w, x, y)
    y2 = y1 - 0.5 * (grad_per_agent(y1, x, y) + 0.7 * (y1 - w))
    assert torch.allclose(out, ((y2[2] + y2[4]) / 2).expand_as(out))


def test_scaffold_round_by_hand() -> None:
    """Catches SCAFFOLD's control variates not updated as option II says, or the server's c not scaled by M/N."""
    method = Scaffold(ScaffoldParams(step=0.5, local_steps=1, batch=3))
    ctx, mixer, w, x, y = _star(method)
    zero = torch.zeros_like(w)
    new = method.round(ctx, {"w": w, "c": zero, "c_own": zero}, 1)
    g = grad_per_agent(w, x, y)
    local = w - 0.5 * g
    assert torch.allclose(new["w"], ((local[2] + local[4]) / 2).expand_as(w))
    assert torch.allclose(new["c"], (2 / 4 * (g[2] + g[4]) / 2).expand_as(w))  # c ← (M/N) mean(c_i⁺ − c_i)
    assert torch.allclose(new["c_own"][[2, 4]], g[[2, 4]]) and torch.equal(new["c_own"][[1, 3]], zero[[1, 3]])
    assert mixer.ledger.totals(direction="forward")["logical_bytes"] == (2 + 4) * 12 * 8  # 2D floats each way


def test_feddyn_round_by_hand() -> None:
    """Catches FedDyn's server state h or the clients' linear terms not updated as the paper says."""
    method = FedDyn(FedDynParams(step=0.5, local_steps=1, alpha=0.2, batch=3))
    ctx, _, w, x, y = _star(method)
    zero = torch.zeros_like(w)
    new = method.round(ctx, {"w": w, "g_own": zero, "h": zero}, 1)
    local = w - 0.5 * grad_per_agent(w, x, y)
    mean = (local[2] + local[4]) / 2
    h = -0.2 * (2 / 4) * (mean - w[0])
    assert torch.allclose(new["h"][0], h)
    assert torch.allclose(new["w"], (mean - h / 0.2).expand_as(w))
    assert torch.allclose(new["g_own"][[2, 4]], -0.2 * (local[[2, 4]] - w[[2, 4]]))


def test_moon_first_round_is_local_sgd_and_its_contrastive_term_acts_later() -> None:
    """Catches MOON's contrastive loss wrong at its fixed point (with the previous model equal to the global one
    its gradient vanishes, so round 1 is plain local SGD), or never acting."""
    method = Moon(MoonParams(step=0.5, local_steps=1, mu=2.0, temperature=0.5, batch=3))
    ctx, _, w, x, y = _star(method)
    new = method.round(ctx, {"w": w, "previous": w}, 1)
    local = w - 0.5 * grad_per_agent(w, x, y)
    assert torch.allclose(new["w"], ((local[2] + local[4]) / 2).expand_as(w), atol=1e-12)
    assert torch.allclose(new["previous"][[2, 4]], local[[2, 4]])
    ctx.begin(2, 6 * 8)
    moon = method.round(ctx, new, 2)["w"]
    ctx.begin(2, 6 * 8)
    plain = Moon(MoonParams(step=0.5, local_steps=1, mu=0.0, temperature=0.5, batch=3)).round(ctx, new, 2)["w"]
    assert not torch.allclose(moon, plain)
