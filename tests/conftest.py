"""Shared test settings: one thread per process (2-core machines), and the path to the contract tools."""

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SHARED_TOOLS = REPO.parent / "shared" / "tools"


@pytest.fixture
def shared_tools() -> Path:
    if not (SHARED_TOOLS / "check_summary.py").exists():
        pytest.skip("../shared/tools is not beside this checkout")
    return SHARED_TOOLS
