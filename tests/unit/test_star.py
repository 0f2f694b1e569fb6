"""The star variant (eq. 13 of docs/method.md) and the Sᵀ option: FedAvg's round by hand, the star's message count,
the server's update, the variant's input checks, and Sᵀ against S."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from surf_dist.comm.local import LocalMixer
from surf_dist.config import load_config
from surf_dist.core.objective import grad_per_agent
from surf_dist.core.rounds import Blocks, RoundContext
from surf_dist.errors import InputError
from surf_dist.graph import build_graph, star_shift
from surf_dist.methods.fedavg import FedAvg, FedAvgParams
from surf_dist.worker.exchanges import Exchanges
from surf_dist.worker.problem import Problem
from surf_dist.worker.trainer import Trainer

STAR = ["topology.spec=star:n=9", "model.variant=star", "model.num_hops=1", "model.uploads_per_round=3"]
SMALL = ["data.num_meta_train=2", "data.num_meta_val=1", "data.num_meta_test=1", "model.num_layers=3"]


class _Uploads:
    """A round schedule without silent agents in which the clients ``uploaded`` upload."""

    uploads_per_round = 2

    def __init__(self, uploaded: np.ndarray) -> None:
        self.exchanges = Exchanges(None, lambda r: uploaded, senders=FedAvg.senders, computes=FedAvg.computes)

    def silent(self, r: int, num_bytes: int) -> None:
        return None

    def quiet(self, r: int, kind: str, silent: object) -> object:
        return self.exchanges.quiet_for(r, kind, None)


class _FullBatch(RoundContext):
    """A context whose mini-batches are each agent's whole training set (for a hand computation)."""

    def batch(self, size: int, local_step: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        return self.train_x_AMP, self.train_y_AM


def test_fedavg_round_by_hand() -> None:
    """Catches a FedAvg round whose server is not the mean of the uploads, or clients that miss the broadcast or
    train without uploading."""
    graph = build_graph("star:n=5", seed=0)
    mixer = LocalMixer(5)
    mixer.set_graph(graph, star_shift(graph, 2, "mean"))
    method = FedAvg(FedAvgParams(step=0.5, local_steps=1, momentum=0.0, batch=2))
    torch.manual_seed(0)
    w = torch.randn(5, 6, dtype=torch.float64)
    x, y = torch.randn(5, 2, 1, dtype=torch.float64), torch.tensor([[0, 1]] * 5)
    schedule = _Uploads(np.array([2, 4]))
    ctx = _FullBatch(mixer, method, (x, y), seed=0, blocks=Blocks([0], 5), schedule=schedule, num_classes=3)
    ctx.begin(1, 6 * 8)
    out = method.round(ctx, {"w": w}, 1)["w"]
    local = w - 0.5 * grad_per_agent(w, x, y)
    server = (local[2] + local[4]) / 2
    assert torch.allclose(out[0], server)
    for client in range(1, 5):
        assert torch.allclose(out[client], server)
    sent = mixer.ledger.totals(direction="forward")["logical_messages"]
    assert sent == 2 + 4  # M uploads, then the broadcast to the n - 1 clients
    assert ctx.end() == [("uploaders", 6 * 8), ("server", 6 * 8)]  # what the time model reads


def test_star_round_counts_uploads_and_downloads_and_the_server_only_aggregates() -> None:
    """Catches a star layer that counts more than M + N − 1 messages, or a server that runs a local update."""
    cfg = load_config("smoke", None, [*SMALL, *STAR, "eval.baselines=[]"])
    problem = Problem(cfg)
    trainer = Trainer(cfg, LocalMixer(problem.num_agents), problem)
    trainer.compute_gradients(0)
    per_round = trainer.mixer.ledger.per_layer("train", field="logical_messages")
    assert per_round == {layer: 3 + 8 for layer in (1, 2, 3)}
    assert trainer.model.server_taps.grad is not None and trainer.model.server_taps.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (["topology.spec=ring:n=9"], "needs a star graph"),
        (["model.num_hops=2"], "one hop per layer"),
        (["failures.semantics=stale"], "use zero"),
        (["model.uploads_per_round=9"], "must lie in 1..8"),
        (["eval.baselines=dgd"], "dgd cannot run with model.variant = star; use local, centralised, fedavg"),
    ],
)
def test_star_input_errors(overrides: list[str], fragment: str) -> None:
    """Catches a star configuration that cannot work but is accepted."""
    with pytest.raises(InputError) as err:
        load_config("smoke", None, [*STAR, *overrides])
    assert any(fragment in p for p in err.value.problems), err.value.problems


def test_fedavg_only_with_the_star() -> None:
    """Catches FedAvg accepted on a graph without a server."""
    with pytest.raises(InputError, match="fedavg cannot run with model.variant = decentralized; use .*dgd"):
        load_config("smoke", None, ["eval.baselines=fedavg"])


@pytest.mark.parametrize(("normalisation", "equal"), [("metropolis", True), ("row", False)])
def test_transpose_equals_s_when_symmetric(normalisation: str, equal: bool) -> None:
    """Catches an Sᵀ option that does nothing on the row-normalised irregular graph, or that changes a
    symmetric S."""
    losses = []
    for transpose in ("false", "true"):
        cfg = load_config(
            "smoke",
            None,
            [*SMALL, "model.dtype=float64", "topology.spec=kregular:n=10,degree=3",
             f"topology.normalisation={normalisation}", f"topology.transpose={transpose}"],
        )  # fmt: skip
        problem = Problem(cfg)
        shift = problem.graph("meta-train", 0).shift.to_dense()
        trainer = Trainer(cfg, LocalMixer(problem.num_agents), problem)
        losses.append(float(trainer.compute_gradients(0)[0]))
        if transpose == "true":
            plain = Problem(load_config("smoke", None, [*SMALL, "topology.spec=kregular:n=10,degree=3",
                                                       f"topology.normalisation={normalisation}"]))  # fmt: skip
            assert torch.equal(shift, plain.graph("meta-train", 0).shift.to_dense().T)
    assert (losses[0] == pytest.approx(losses[1], rel=1e-12)) == equal
