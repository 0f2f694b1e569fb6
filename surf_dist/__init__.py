"""surf-dist: a distributed simulator for Stochastic Unrolled Federated learning (SURF / U-DGD).

The Python API (``docs/api.md``): ``train``, ``evaluate``, ``baselines`` (the methods alone), ``transfer``
(other graphs), ``load_run`` and ``make_config``; the extension points
``register_baseline`` (a ``Method`` subclass), ``register_dataset`` (a loader returning ``Arrays``),
``register_local_update`` (U-DGD's local network) and ``register_topology`` (a graph generator), filled by plugin
modules that ``run.plugins`` names. Importing the package imports no torch.
"""

from .api import Run, baselines, evaluate, load_run, make_config, train, transfer
from .data.arrays import Arrays
from .errors import InputError, RunFailed
from .methods.base import Method
from .plugins import (
    Key,
    NoParams,
    param,
    register_baseline,
    register_dataset,
    register_local_update,
    register_topology,
)
from .rundir.summary import EvalResult, MethodResult, Summary, TrainResult, UDGDResult

__version__ = "0.2.0"

__all__ = [
    "Arrays",
    "EvalResult",
    "InputError",
    "Key",
    "Method",
    "MethodResult",
    "NoParams",
    "Run",
    "RunFailed",
    "Summary",
    "TrainResult",
    "UDGDResult",
    "__version__",
    "baselines",
    "evaluate",
    "load_run",
    "make_config",
    "param",
    "register_baseline",
    "register_dataset",
    "register_local_update",
    "register_topology",
    "train",
    "transfer",
]
