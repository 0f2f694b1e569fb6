"""The star variant (PAPER.md eq. 13) and the Sᵀ option: FedAvg's round by hand, the star's message count,
the server's update, the variant's input checks, and Sᵀ against S."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from surf_dist.comm.local import LocalMixer
from surf_dist.config import load_config
from surf_dist.core.baselines import BaselineSteps, _fedavg_round
from surf_dist.errors import InputError
from surf_dist.graph import build_graph, star_shift
from surf_dist.train.exchanges import Exchanges
from surf_dist.train.problem import Problem
from surf_dist.train.trainer import Trainer

STAR = ["topology.spec=star:n=9", "model.variant=star", "model.num_hops=1", "model.uploads_per_round=3"]
SMALL = ["data.num_meta_train=2", "data.num_meta_val=1", "data.num_meta_test=1", "model.num_layers=3"]


def test_fedavg_round_by_hand() -> None:
    """Catches a FedAvg round whose server is not the mean of the uploads, or clients that miss the broadcast or
    train without uploading."""
    graph = build_graph("star:n=5", seed=0)
    mixer = LocalMixer(5)
    mixer.set_graph(graph, star_shift(graph, 2, "fedavg"))
    uploaded = np.array([2, 4])
    exchanges = Exchanges(None, lambda r: uploaded, fedavg=True)
    steps = BaselineSteps(
        dgd_step=0, dsgd_step=0, dsgd_batch=1, dfedavgm_step=0, dfedavgm_local_steps=1, dfedavgm_momentum=0.0,
        dfedavgm_batch=2, fedavg_step=0.5, fedavg_local_steps=1,
    )  # fmt: skip
    torch.manual_seed(0)
    w = torch.randn(5, 6, dtype=torch.float64)
    x, y = torch.randn(5, 2, 1, dtype=torch.float64), torch.tensor([[0, 1]] * 5)
    from surf_dist.core.objective import grad_per_agent

    out = _fedavg_round(mixer, w, 1, steps, exchanges.quiet, lambda r, q, b: (x, y))
    local = w - 0.5 * grad_per_agent(w, x, y)
    server = (local[2] + local[4]) / 2
    assert torch.allclose(out[0], server)
    for client in range(1, 5):
        assert torch.allclose(out[client], server)
    sent = mixer.ledger.totals(direction="forward")["logical_messages"]
    assert sent == 2 + 4  # M uploads, then the broadcast to the n - 1 clients


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
        (["eval.baselines=dgd"], "use fedavg"),
    ],
)
def test_star_input_errors(overrides: list[str], fragment: str) -> None:
    """Catches a star configuration that cannot work but is accepted."""
    with pytest.raises(InputError) as err:
        load_config("smoke", None, [*STAR, *overrides])
    assert any(fragment in p for p in err.value.problems), err.value.problems


def test_fedavg_only_with_the_star() -> None:
    """Catches FedAvg accepted on a graph without a server."""
    with pytest.raises(InputError, match="use dgd, dsgd, dfedavgm"):
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
