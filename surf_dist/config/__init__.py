"""Configuration: frozen dataclasses (``schema``), presets, TOML and ``--set`` parsing (``parse``) and
validation of the whole config at once (``validate``). The resolved config is saved as ``config.json``."""

from .faults import parse_kill
from .parse import from_dict, load_config, read_config, replace, save_config
from .presets import PRESETS
from .schema import (
    BACKENDS,
    Config,
    DataConfig,
    EvalConfig,
    FailureConfig,
    ModelConfig,
    NetworkConfig,
    RunConfig,
    TopologyConfig,
    TrainConfig,
)
from .validate import validate_config

__all__ = [
    "BACKENDS",
    "PRESETS",
    "Config",
    "DataConfig",
    "EvalConfig",
    "FailureConfig",
    "ModelConfig",
    "NetworkConfig",
    "RunConfig",
    "TopologyConfig",
    "TrainConfig",
    "from_dict",
    "load_config",
    "parse_kill",
    "read_config",
    "replace",
    "save_config",
    "validate_config",
]
