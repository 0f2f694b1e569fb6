"""The paper's other star baselines (its Figure 2, right), at the same uploads per round as FedAvg: each round the
M uploading clients train locally from the server's model w, the server (agent 0) combines their uploads, and
every client downloads the result (``fedavg.star_round``; two exchanges a round). Q local steps of a fresh
mini-batch of B samples each.

* FedProx (Li et al., 2020): local SGD on f_i(y) + (μ/2) ‖y − w‖².
* SCAFFOLD (Karimireddy et al., 2020, option II): control variates correct the client drift. A client steps with
  ∇f_i(y) − c_i + c; afterwards c_i⁺ = c_i − c + (w − y) / (Q η). It uploads [y ‖ c_i⁺ − c_i] (2D floats) and the
  server sets w ← mean(y), c ← c + (M / N) mean(c_i⁺ − c_i), broadcasting [w ‖ c] (2D floats).
* FedDyn (Acar et al., 2021): a client minimises f_i(y) − ⟨g_i, y⟩ + (α/2) ‖y − w‖², then g_i ← g_i − α (y − w);
  the server keeps h ← h − α (M / N) (mean(y) − w) and sends w ← mean(y) − h / α.
* MOON (Li, He and Song, 2021): the local loss adds μ · ℓ_con, the model-contrastive loss
  ℓ_con = −log( e^{sim(z, z_g)/τ} / (e^{sim(z, z_g)/τ} + e^{sim(z, z_p)/τ}) ) with sim the cosine similarity of
  representations z (the local model's), z_g (the global model's) and z_p (the client's previous model's). On frozen
  features with a linear model the representation is the logits, so ℓ_con acts on the logits; its gradient comes
  from automatic differentiation.

N = n − 1 clients; the server is row 0 of every state tensor, and keeps its own rows as the method says.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..plugins import param, register_baseline
from .base import State
from .fedavg import StarMethod, star_round
from .tracking import _cat


@dataclass(frozen=True, kw_only=True)
class FedProxParams:
    step: float = param(3.0, low=0, low_open=True, help="local SGD step (tuned with μ on the star preset)")
    local_steps: int = param(5, low=1, help="Q, local steps per round")
    mu: float = param(0.001, low=0, grid=(0.001, 0.01, 0.1, 1.0), help="μ, the proximal weight")
    batch: int = param(10, low=1, help="B, samples per local step")


@register_baseline("fedprox")
class FedProx(StarMethod):
    """FedProx: local SGD with a proximal term towards the server's model."""

    label = "FedProx"
    Params = FedProxParams
    tunable = ("step", "mu")

    def round(self, ctx, state: State, r: int) -> State:
        p, w = self.params, state["w"]

        def local(y):
            for q in range(p.local_steps):
                y = y - p.step * (ctx.grad(y, *ctx.batch(p.batch, q)) + p.mu * (y - w))
            return y

        return {"w": star_round(ctx, w, local)[1]}


@dataclass(frozen=True, kw_only=True)
class ScaffoldParams:
    step: float = param(3.0, low=0, low_open=True, help="η, local SGD step (tuned on the star preset)")
    local_steps: int = param(5, low=1, help="Q, local steps per round")
    batch: int = param(10, low=1, help="B, samples per local step")


@register_baseline("scaffold")
class Scaffold(StarMethod):
    """SCAFFOLD: local steps corrected by control variates (uploads and downloads carry 2D floats)."""

    label = "SCAFFOLD"
    Params = ScaffoldParams

    def message_floats(self, dim: int) -> int:
        return 2 * dim

    def init(self, ctx, w0_AD) -> State:
        zero = w0_AD.new_zeros(w0_AD.shape)
        return {"w": w0_AD, "c": zero, "c_own": zero}

    def round(self, ctx, state: State, r: int) -> State:
        p, w, c, c_own = self.params, state["w"], state["c"], state["c_own"]
        dim, server_A, uploading_A = w.shape[1], ctx.server_A, ctx.uploading_A
        y = w
        for q in range(p.local_steps):
            y = y - p.step * (ctx.grad(y, *ctx.batch(p.batch, q)) - c_own + c)
        c_new = c_own - c + (w - y) / (p.local_steps * p.step)
        y, c_new = y.where(uploading_A, w), c_new.where(uploading_A, c_own)
        mean = ctx.exchange(_cat(y, c_new - c_own))  # at the server: the mean of the uploads
        share = ctx.num_uploads / (ctx.num_agents - 1)  # M / N
        server = _cat(mean[:, :dim], c + share * mean[:, dim:])
        sent = server.where(server_A, _cat(w, c))
        received = ctx.exchange(sent)
        new = sent.where(server_A, received)
        return {"w": new[:, :dim], "c": new[:, dim:], "c_own": c_new}


@dataclass(frozen=True, kw_only=True)
class FedDynParams:
    step: float = param(10.0, low=0, low_open=True, help="local SGD step (tuned with α on the star preset)")
    local_steps: int = param(5, low=1, help="Q, local steps per round")
    alpha: float = param(
        0.001, low=0, low_open=True, grid=(0.001, 0.01, 0.1, 1.0), help="α, the dynamic regulariser's weight"
    )
    batch: int = param(10, low=1, help="B, samples per local step")


@register_baseline("feddyn")
class FedDyn(StarMethod):
    """FedDyn: a dynamic regulariser aligns the clients' stationary points with the global one."""

    label = "FedDyn"
    Params = FedDynParams
    tunable = ("step", "alpha")

    def init(self, ctx, w0_AD) -> State:
        zero = w0_AD.new_zeros(w0_AD.shape)
        return {"w": w0_AD, "g_own": zero, "h": zero}

    def round(self, ctx, state: State, r: int) -> State:
        p, w, g_own, h = self.params, state["w"], state["g_own"], state["h"]
        server_A, uploading_A = ctx.server_A, ctx.uploading_A
        y = w
        for q in range(p.local_steps):
            y = y - p.step * (ctx.grad(y, *ctx.batch(p.batch, q)) - g_own + p.alpha * (y - w))
        y = y.where(uploading_A, w)
        g_new = (g_own - p.alpha * (y - w)).where(uploading_A, g_own)
        mean = ctx.exchange(y)
        share = ctx.num_uploads / (ctx.num_agents - 1)
        h_new = (h - p.alpha * share * (mean - w)).where(server_A, h)
        sent = (mean - h_new / p.alpha).where(server_A, w)
        received = ctx.exchange(sent)
        return {"w": sent.where(server_A, received), "g_own": g_new, "h": h_new}


@dataclass(frozen=True, kw_only=True)
class MoonParams:
    step: float = param(3.0, low=0, low_open=True, help="local SGD step (tuned with μ on the star preset)")
    local_steps: int = param(5, low=1, help="Q, local steps per round")
    mu: float = param(1.0, low=0, grid=(0.1, 1.0, 5.0), help="μ, the contrastive term's weight")
    temperature: float = param(0.5, low=0, low_open=True, help="τ of the contrastive loss")
    batch: int = param(10, low=1, help="B, samples per local step")


@register_baseline("moon")
class Moon(StarMethod):
    """MOON: model-contrastive federated learning (on the logits of the linear model)."""

    label = "MOON"
    Params = MoonParams
    tunable = ("step", "mu")

    def init(self, ctx, w0_AD) -> State:
        return {"w": w0_AD, "previous": w0_AD}

    def round(self, ctx, state: State, r: int) -> State:
        p, w, previous = self.params, state["w"], state["previous"]

        def local(y):
            for q in range(p.local_steps):
                x, labels = ctx.batch(p.batch, q)
                z_global, z_previous = ctx.logits(w, x), ctx.logits(previous, x)

                def loss(v, x=x, labels=labels, z_global=z_global, z_previous=z_previous):
                    z = ctx.logits(v, x)
                    near = _cosine(z, z_global) / p.temperature
                    far = _cosine(z, z_previous) / p.temperature
                    contrastive = (far.exp() + near.exp()).log() - near  # −log(e^near / (e^near + e^far))
                    return ctx.loss(v, x, labels) + p.mu * contrastive.mean(dim=1)

                y = y - p.step * ctx.gradient_of(loss, y)
            return y

        uploaded, w_new = star_round(ctx, w, local)
        return {"w": w_new, "previous": uploaded.where(ctx.uploading_A, previous)}


def _cosine(a, b):
    """Cosine similarity of the last dimension (A × B × C → A × B)."""
    return (a * b).sum(dim=-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-12)
