"""Data: datasets, frozen feature maps, per-task augmentations and partitions, keyed random generators.

A worker builds the tasks of its own agents with :class:`TaskSource`; every draw is keyed by
(seed, split, task, ...) so workers agree without talking.
"""

from surf_dist.core.rng import keyed_seed, numpy_rng, torch_generator
from surf_dist.data.augment import AUGMENTATIONS, apply_augmentation, draw_augmentation
from surf_dist.data.datasets import DATASETS, ImageSplit, load_split
from surf_dist.data.features import FEATURE_MAPS, feature_map
from surf_dist.data.partition import PARTITIONS, partition
from surf_dist.data.tasks import SPLITS, DataSpec, TaskData, TaskSource, validate_data_spec

__all__ = [
    "AUGMENTATIONS",
    "DATASETS",
    "FEATURE_MAPS",
    "PARTITIONS",
    "SPLITS",
    "DataSpec",
    "ImageSplit",
    "TaskData",
    "TaskSource",
    "apply_augmentation",
    "draw_augmentation",
    "feature_map",
    "keyed_seed",
    "load_split",
    "numpy_rng",
    "partition",
    "torch_generator",
    "validate_data_spec",
]
