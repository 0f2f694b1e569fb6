"""Shared test settings: one thread per process (2-core machines), and registries restored after every test (a
plugin a test imports registers names for that test only). The tests need nothing outside this checkout: the
summary contract and the parity comparison are the package's own (``surf-dist check-summary``, ``surf-dist
compare``)."""

import os
from collections.abc import Iterator

import pytest
import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _registries_as_before() -> Iterator[None]:
    """Whatever a test's plugins register (and the record of which plugins were imported) is gone after it."""
    from surf_dist.plugins import DATASETS, LOCAL_UPDATES, METHODS, TOPOLOGIES
    from surf_dist.plugins import load as plugin_load

    registries = (METHODS, DATASETS, LOCAL_UPDATES, TOPOLOGIES)
    for registry in registries:
        registry.names()  # the built-ins, loaded before the snapshot
    saved = [(dict(r._entries), dict(r._origin)) for r in registries]
    loaded = dict(plugin_load._LOADED)
    yield
    for registry, (entries, origin) in zip(registries, saved):
        registry._entries, registry._origin = entries, origin
    plugin_load._LOADED.clear()
    plugin_load._LOADED.update(loaded)


@pytest.fixture(autouse=True)
def _torch_state_as_before() -> Iterator[None]:
    """A test that changes torch's default dtype must restore it (a float64 default left behind once made
    later feature-map tests fail only in the full suite)."""
    dtype = torch.get_default_dtype()
    yield
    assert torch.get_default_dtype() == dtype, f"the test left torch's default dtype at {torch.get_default_dtype()}"


@pytest.fixture
def float64_by_default() -> Iterator[None]:
    """For tests that compare to 1e-10: float64 for tensors made without a dtype, restored afterwards
    (``pytestmark = pytest.mark.usefixtures("float64_by_default")``)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)
