"""The data settings (``data.*``), their names and their validation: no torch, so the CLI validates a config
without it (the tasks themselves are ``data.tasks``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..plugins import DATASETS

__all__ = ["AUGMENTATIONS", "FEATURE_MAPS", "PARTITIONS", "SPLITS", "DataSpec", "validate_data_spec"]

SPLITS = ("meta-train", "meta-val", "meta-test")
AUGMENTATIONS = ("none", "crop", "hflip", "vflip", "rot90")
FEATURE_MAPS = ("pixels", "cnn", "resnet18")
PARTITIONS = ("iid", "dirichlet", "shards")


@dataclass(frozen=True)
class DataSpec:
    """Data settings (the ``data.*`` config keys)."""

    dataset: str = "digits"
    """A registered dataset: "digits" (scikit-learn, offline), "fashion-mnist", "mnist", "cifar10", or a plugin's
    (``register_dataset``)."""
    root: str | None = None
    """Folder holding the dataset files; None = ~/.cache/surf-dist/data (and, for Fashion-MNIST, the
    Debian package dataset-fashion-mnist)."""
    download: bool = False
    """Download missing files with torchvision into ``root``."""
    features: str = "pixels"
    """Feature map: "pixels" (flattened, in [0, 1]), "cnn" (64-d) or "resnet18" (512-d); backbones are
    trained briefly on the train split, never downloaded pretrained."""
    cache_dir: str | None = None
    """Cache of backbones and features; None = ~/.cache/surf-dist."""
    partition: str = "dirichlet"
    """How a task's data is split over agents: "dirichlet", "iid" or "shards"."""
    alpha: float = 0.7
    """Dirichlet concentration (> 0); smaller means fewer classes per agent."""
    shards_per_agent: int = 2
    """Classes per agent for the "shards" partition."""
    num_train: int = 45
    """Training samples per agent."""
    num_heldout: int = 15
    """Held-out samples per agent, from the same agent's distribution."""
    augmentations: tuple[str, ...] = ("none",)
    """Each task draws one of these uniformly and applies it in image space (``none``, ``crop``, ``hflip``,
    ``vflip``, ``rot90``). Off by default: on 8×8 digits a flip or a 90° turn makes another task altogether
    (a classifier fit to one reaches 10-45 % on the others), and the reference code's tasks effectively
    shared one."""
    feature_device: str = "cpu"
    """Device that trains and runs the cnn/resnet18 backbone: "cpu" (deterministic), "cuda", "cuda:N"."""
    val_fraction: float = 0.0
    """Share of the dataset's train split kept out of meta-training: meta-val tasks draw only from these
    images, meta-train tasks only from the rest (a fixed stratified split, the same for every seed). 0: both
    draw from the whole train split. Off for digits: a 20 % pool of its 1,198 train images holds 24 per class,
    below the largest class count of 24 % of Dirichlet(0.7) agents with 60 samples (redraws would bias the
    partition), and the default's single epoch validates once, at the end, so no model is selected on it. The
    fashion preset keeps 10,000 of Fashion-MNIST's 60,000 train images out. The backbone of cnn/resnet18
    features is trained on the whole train split (never on test images)."""
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    """A registered dataset's own settings, ``data.NAME_FIELD``."""


def validate_data_spec(spec: DataSpec) -> list[str]:
    """Every problem with ``spec``, each naming the field as ``data.<field>`` and the fix; [] if none."""
    problems = []

    def is_int(value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    if spec.dataset not in DATASETS:
        problems.append(DATASETS.unknown(spec.dataset))
    if spec.features not in FEATURE_MAPS:
        problems.append(f"data.features: unknown feature map {spec.features!r}; use one of {', '.join(FEATURE_MAPS)}")
    if spec.partition not in PARTITIONS:
        problems.append(f"data.partition: unknown partition {spec.partition!r}; use one of {', '.join(PARTITIONS)}")
    if isinstance(spec.augmentations, str) or not isinstance(spec.augmentations, Sequence):
        problems.append(
            f'data.augmentations: must be a list of names, e.g. ["none", "crop"], got {spec.augmentations!r}'
        )
    else:
        if len(spec.augmentations) == 0:
            problems.append('data.augmentations: the list is empty; use ["none"] to disable augmentation')
        problems += [
            f"data.augmentations: unknown augmentation {name!r}; use any of {', '.join(AUGMENTATIONS)}"
            for name in spec.augmentations
            if name not in AUGMENTATIONS
        ]
    for setting in ("num_train", "num_heldout"):
        value = getattr(spec, setting)
        if not is_int(value) or value < 1:
            problems.append(f"data.{setting}: must be a positive integer (samples per agent), got {value!r}")
    if (
        isinstance(spec.alpha, bool)
        or not isinstance(spec.alpha, int | float)
        or not (math.isfinite(spec.alpha) and spec.alpha > 0)
    ):
        problems.append(
            f"data.alpha: must be a finite number > 0 (e.g. 0.7; smaller = more skewed), got {spec.alpha!r}"
        )
    num_classes = getattr(DATASETS.get(spec.dataset), "num_classes", None) if spec.dataset in DATASETS else None
    if not is_int(spec.shards_per_agent) or not 1 <= spec.shards_per_agent <= (num_classes or spec.shards_per_agent):
        top = f"[1, {num_classes}]" if num_classes else "≥ 1"
        problems.append(f"data.shards_per_agent: must be an integer in {top}, got {spec.shards_per_agent!r}")
    if not isinstance(spec.download, bool):
        problems.append(f"data.download: must be true or false, got {spec.download!r}")
    for setting in ("root", "cache_dir"):
        value = getattr(spec, setting)
        if value is not None and (not isinstance(value, str) or not value.strip() or "\x00" in value):
            problems.append(f"data.{setting}: must be a folder path or unset, got {value!r}")
    fraction = spec.val_fraction
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 <= fraction < 1:
        problems.append(f"data.val_fraction: must be a number in [0, 1) (e.g. 0.2; 0: no pool), got {fraction!r}")
    device = spec.feature_device
    if not isinstance(device, str) or not (device == "cpu" or device == "cuda" or _is_cuda_index(device)):
        problems.append(f'data.feature_device: must be "cpu", "cuda" or "cuda:N", got {device!r}')
    return problems


def _is_cuda_index(device: str) -> bool:
    return device.startswith("cuda:") and device[5:].isdigit()


def dataset_params(spec: DataSpec) -> Any:
    """The configured dataset's settings object (its ``Params``; ``data.NAME_FIELD``)."""
    from ..plugins.params import build, checked_values

    cls = DATASETS.params_of(spec.dataset)
    return build(cls, checked_values(cls, spec.params.get(spec.dataset, {}), f"data.{spec.dataset}_", []))
