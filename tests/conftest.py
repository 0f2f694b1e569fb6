"""Shared test settings: one thread per process (2-core machines). The tests need nothing outside this
checkout: the summary contract and the parity comparison are the package's own (``surf-dist check-summary``,
``surf-dist compare``)."""

import os

import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)
