"""Checks of a ledger the tests share, each against a count kept apart from the one it checks.

(The split by phase or by direction partitions the same counters as the total, so its sum equals the total by
construction and is not checked here; the split by kind can fail: a direction with no kind.)
"""

from __future__ import annotations

from surf_dist.comm.ledger import KIND_OF_DIRECTION, Ledger


def check_breakdowns(ledger: Ledger) -> None:
    """Every direction recorded has a kind, and the kinds sum to the total; the per-edge counters (a separate
    record, kept per directed edge) sum to the round counters' agent messages in each direction; physical agent
    traffic never exceeds the logical; coordination traffic is exactly the method's all-reduces."""
    directions = {key[1] for key in ledger.counts}
    assert directions <= set(KIND_OF_DIRECTION), f"directions without a kind: {directions - set(KIND_OF_DIRECTION)}"
    total = ledger.totals()
    kinds = ledger.by_kind()
    assert {k: sum(part[k] for part in kinds.values()) for k in total} == total
    agent = kinds["agent"]
    assert agent["physical_bytes"] <= agent["logical_bytes"]
    assert agent["physical_messages"] <= agent["logical_messages"]
    _, _, counts = ledger.edge_messages()
    for column, direction in enumerate(("forward", "backward")):
        assert int(counts[:, column].sum()) == ledger.totals(direction=direction)["logical_messages"]
    assert int(counts.sum()) == agent["logical_messages"]
    assert kinds["coordination"]["logical_messages"] == ledger.totals(direction="allreduce")["logical_messages"]
