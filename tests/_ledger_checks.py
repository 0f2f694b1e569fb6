"""Checks of a ledger the tests share: every breakdown sums to its total."""

from __future__ import annotations

from surf_dist.comm.ledger import Ledger


def check_breakdowns(ledger: Ledger) -> None:
    """Every breakdown of ``ledger`` sums exactly to its total; the per-edge counts sum to the agents' messages."""
    total = ledger.totals()
    for split in (ledger.by_kind(), ledger.by_phase(), ledger.by_direction()):
        assert {k: sum(part[k] for part in split.values()) for k in total} == total
    agent = ledger.by_kind()["agent"]
    assert agent["physical_bytes"] <= agent["logical_bytes"]
    assert agent["physical_messages"] <= agent["logical_messages"]
    _, _, counts = ledger.edge_messages()
    for column, direction in enumerate(("forward", "backward")):
        assert int(counts[:, column].sum()) == ledger.totals(direction=direction)["logical_messages"]
    assert (
        ledger.by_kind()["coordination"]["logical_messages"] == ledger.totals(direction="allreduce")["logical_messages"]
    )
