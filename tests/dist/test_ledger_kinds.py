"""The ledger's kinds of traffic on 1-3 forked gloo ranks: every breakdown sums to its total, the agents'
physical bytes stay below their logical bytes, and the simulator's traffic (Θ's gradient all-reduce, scalar
all-reduces, gathers) is never counted as the agents'."""

from __future__ import annotations

import pytest
from _harness import dist_config, run_ranks
from _ledger_checks import check_breakdowns

from surf_dist.comm.ledger import Ledger
from surf_dist.config import load_config
from surf_dist.worker.evaluate import evaluate

pytestmark = pytest.mark.dist


def _ledger_of_a_step_and_an_evaluation(trainer):
    trainer.train_step()
    evaluate(trainer, trainer.model)
    return trainer.mixer.merged_ledger_state()


@pytest.mark.timeout(150)
@pytest.mark.parametrize("num_workers", [1, 2, 3])
def test_breakdowns_sum_to_totals_on_ranks(num_workers: int) -> None:
    """Catches kinds, phases or directions that do not add up across ranks, or simulator traffic filed as the
    agents' (the ledger of the 417 MB "physical" of issue 12)."""
    cfg = load_config(
        "smoke",
        None,
        [
            "topology.spec=random:n=12,p=0.4",
            "topology.placement=mincut",
            "model.normalisation=agent-batch",
            "data.num_meta_test=1",
            "eval.rounds_factor=1",
        ],
    )
    ledger = Ledger(12)
    ledger.load_state(run_ranks(dist_config(cfg, num_workers), _ledger_of_a_step_and_an_evaluation)[0])
    check_breakdowns(ledger)
    kinds = ledger.by_kind()
    directions = ledger.by_direction()
    if num_workers == 1:
        assert kinds["agent"]["physical_bytes"] == 0 and kinds["simulator"]["physical_bytes"] == 0
    else:
        assert kinds["agent"]["physical_bytes"] > 0
        assert directions["params"]["physical_bytes"] > kinds["agent"]["physical_bytes"]  # Θ is 9 M floats
        assert directions["gather"]["physical_bytes"] > 0
        assert kinds["coordination"]["physical_bytes"] == directions["allreduce"]["physical_bytes"] > 0
    assert kinds["coordination"]["logical_messages"] > 0
