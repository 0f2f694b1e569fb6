"""Ray tests: a 2-CPU local Ray per test module, shut down when the module ends.

The CLI test (``test_ray_cli.py``) uses no session of its own: ``surf-dist train --backend ray`` starts
and stops its own Ray, and modules run one after another, so the two never overlap.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _ray_support

from surf_dist.runtime.ray_driver import workers_at_normal_priority  # noqa: E402

ray = pytest.importorskip("ray", reason="the Ray tests need Ray: pip install 'surf-dist[ray]'")


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    """A fresh local Ray with 2 CPUs ("local": never a cluster that happens to run here)."""
    assert not ray.is_initialized(), "a Ray session leaked from an earlier test module"
    with workers_at_normal_priority():  # as surf-dist's own local Ray: nice 0, not Ray's 15
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    try:
        yield
    finally:
        ray.shutdown()
