"""Parity of the torch backend with the local oracle, on forked gloo ranks (docs/development.md: parity with the local oracle).

The body is ``tests/_parity.py``'s, the same that runs on Ray actors; here every case runs in W forked ranks
(``_harness.run_ranks``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _harness import run_ranks
from _parity import CASES, Case, check_parity

pytestmark = pytest.mark.dist


@pytest.mark.timeout(150)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_torch_backend_matches_local_oracle(case: Case, tmp_path: Path) -> None:
    """Catches any difference between TorchMixer on W forked ranks and LocalMixer: values, gradients,
    final parameters (on every rank) and the ledger's logical and physical counts."""
    check_parity(case, tmp_path, run_ranks)
