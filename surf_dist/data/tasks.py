"""Federated tasks: one dataset split over all agents, built as a pure function of (seed, split, index).

Shape legend:
    N  images in a dataset split (the pool)
    P  feature dimension
    A  agents requested (the block a worker hosts); all agents when none are named
    S  samples per agent = M + T
    M  training samples per agent (``num_train``)
    T  held-out samples per agent (``num_heldout``)

Task ``index`` of meta-split ``split`` is built in this order, every draw keyed so that any worker,
holding any block of agents, builds the same task without talking to the others:

1. the pool: the dataset's *train* split for "meta-train" and "meta-val", its *test* split for
   "meta-test" (docs/method.md). With ``val_fraction > 0`` the train split is cut once, by a fixed
   stratified draw (:func:`val_pool_split`), into a meta-train pool and a meta-val pool of disjoint
   images, so that meta-validation measures generalisation to unseen images as meta-test does;
2. the augmentation: ``draw_augmentation(seed, split, index, spec.augmentations)``, applied in image
   space to the whole pool, then the feature map. Both are cached per (dataset split, augmentation)
   in the :class:`TaskSource`, so the random-crop offsets are drawn once per image (key ``task=0``)
   and shared by every task that draws "crop"; what changes from task to task is *which*
   augmentation and *which* samples;
3. the partition: ``partition(labels, ...)`` over ALL agents with ``numpy_rng(seed, "partition",
   split, index)``; then only the requested agents' rows are gathered (index arrays are cheap, the
   feature rows of other agents are never materialised);
4. each agent's S = M + T samples: the first M train, the last T held out (both from the agent's own
   distribution).

Features: pixels stay in [0, 1]; cnn/resnet18 features are standardised with the mean and standard
deviation of the un-augmented train split's features (computed once per TaskSource).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from surf_dist.core.rng import numpy_rng
from surf_dist.data.augment import apply_augmentation, draw_augmentation
from surf_dist.data.datasets import ImageSplit, load_split
from surf_dist.data.features import feature_map, standardise
from surf_dist.data.partition import partition
from surf_dist.data.spec import SPLITS, DataSpec, dataset_params, validate_data_spec
from surf_dist.errors import InputError

__all__ = ["SPLITS", "DataSpec", "TaskData", "TaskSource", "dataset_split_of", "val_pool_split", "validate_data_spec"]

_VAL_POOL_SEED = 0


@dataclass(frozen=True)
class TaskData:
    """One task restricted to the agents a worker hosts.

    Attributes:
        agents: A global agent ids, int64, sorted ascending; row a of every tensor is agent agents[a].
        train_x: A x M x P features of the agents' training samples.
        train_y: A x M int64 labels.
        heldout_x: A x T x P features of the held-out samples.
        heldout_y: A x T int64 labels.
        num_classes: classes of the dataset (the softmax width).
        num_features: P.
        augmentation: the augmentation this task drew.
    """

    agents: torch.Tensor
    train_x: torch.Tensor
    train_y: torch.Tensor
    heldout_x: torch.Tensor
    heldout_y: torch.Tensor
    num_classes: int
    num_features: int
    augmentation: str = "none"


def dataset_split_of(split: str) -> str:
    """The dataset split a meta-split draws from: "train" for meta-train/meta-val, "test" for meta-test."""
    if split not in SPLITS:
        raise InputError([f"unknown task split {split!r}; use one of {', '.join(SPLITS)}"])
    return "test" if split == "meta-test" else "train"


def val_pool_split(labels_N: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """The train split cut into (meta-train pool, meta-val pool): sorted, disjoint index arrays.

    Stratified: round(val_fraction · n_c) images of every class c go to the meta-val pool, drawn by a
    generator keyed by a constant (the pools are part of the data set-up, like digits' test split, not of
    the run seed)."""
    rng = numpy_rng(_VAL_POOL_SEED, "val-pool")
    val = [
        rng.permutation(members)[: int(round(val_fraction * members.shape[0]))]
        for members in (np.flatnonzero(labels_N == c) for c in np.unique(labels_N))
    ]
    val_N = np.sort(np.concatenate(val)) if val else np.empty(0, dtype=np.int64)
    keep = np.ones(labels_N.shape[0], dtype=bool)
    keep[val_N] = False
    return np.flatnonzero(keep).astype(np.int64), val_N.astype(np.int64)


class TaskSource:
    """Builds tasks for any block of agents; loads each dataset split once and caches its features.

    Args:
        spec: the data settings (validated here too).
        seed: the run seed; every task is a pure function of (seed, split, index).
        num_agents: agents in the graph (every partition is drawn over all of them).
        dtype: dtype of the feature tensors (float32 or float64).

    Memory: the features of each (dataset split, augmentation) pair used so far are kept, N x P each.
    """

    def __init__(self, spec: DataSpec, *, seed: int, num_agents: int, dtype: torch.dtype = torch.float32) -> None:
        problems = validate_data_spec(spec)
        if not isinstance(num_agents, int) or num_agents < 1:
            problems.append(f"the number of agents must be a positive integer, got {num_agents!r}")
        if problems:
            raise InputError(problems)
        self.spec = spec
        self.seed = seed
        self.num_agents = num_agents
        self.dtype = dtype
        self.samples_per_agent = spec.num_train + spec.num_heldout
        self._images: dict[str, ImageSplit] = {}
        self._labels: dict[str, np.ndarray] = {}
        self._features: dict[tuple[str, str], torch.Tensor] = {}
        self._stats: tuple[torch.Tensor, torch.Tensor] | None = None
        self._pools: tuple[np.ndarray, np.ndarray] | None = None

    # --- lazily loaded, cached pieces ---

    def _split(self, data_split: str) -> ImageSplit:
        if data_split not in self._images:
            loaded = load_split(
                self.spec.dataset,
                data_split,
                root=self.spec.root,
                download=self.spec.download,
                params=dataset_params(self.spec),
            )
            if loaded.kind == "features":
                self._check_features_fit(data_split)
            self._images[data_split] = loaded
            self._labels[data_split] = loaded.labels.numpy()
        return self._images[data_split]

    def _check_features_fit(self, data_split: str) -> None:
        """A dataset of features (not images) goes through no backbone and no image augmentation."""
        problems = []
        if self.spec.features != "pixels":
            problems.append(
                f"data.features = {self.spec.features!r}: data.dataset = {self.spec.dataset!r} gives features, "
                "not images; use data.features=pixels (its features as they are)"
            )
        if any(a != "none" for a in self.spec.augmentations):
            problems.append(
                f"data.augmentations = {list(self.spec.augmentations)}: data.dataset = {self.spec.dataset!r} gives "
                'features, not images; use data.augmentations=["none"]'
            )
        if problems:
            raise InputError(problems)

    def _raw_features(self, data_split: str, augmentation: str) -> torch.Tensor:
        images = self._split(data_split)
        if augmentation != "none":
            augmented = apply_augmentation(images.images, augmentation, seed=self.seed, task=0)
            images = ImageSplit(images=augmented, labels=images.labels, num_classes=images.num_classes)
        return feature_map(
            images,
            name=self.spec.features,
            dataset=self.spec.dataset,
            train_split=self._split("train"),
            cache_dir=self.spec.cache_dir,
            seed=self.seed,
            device=self.spec.feature_device,
        )

    def features(self, data_split: str, augmentation: str) -> torch.Tensor:
        """N x P features of dataset split ``data_split`` ("train"/"test") under ``augmentation`` (cached)."""
        key = (data_split, augmentation)
        if key not in self._features:
            features_NP = self._raw_features(data_split, augmentation)
            if self.spec.features != "pixels":
                mean_P, std_P = self._train_stats()
                features_NP = standardise(features_NP, mean_P, std_P)
            self._features[key] = features_NP.to(self.dtype).contiguous()
        return self._features[key]

    def _train_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._stats is None:
            train_NP = self._raw_features("train", "none").to(torch.float64)
            self._stats = (train_NP.mean(0).float(), train_NP.std(0).float())
        return self._stats

    @property
    def num_features(self) -> int:
        """P (loads the train split and, for backbones, trains or loads it)."""
        return int(self.features("train", "none").shape[1])

    @property
    def num_classes(self) -> int:
        return self._split("train").num_classes

    # --- tasks ---

    def augmentation(self, split: str, index: int) -> str:
        """The augmentation task ``index`` of ``split`` draws."""
        dataset_split_of(split)
        return draw_augmentation(self.seed, split, index, self.spec.augmentations)

    def pool(self, split: str) -> np.ndarray | None:
        """Indices into the train split that ``split``'s tasks draw from (None: the whole dataset split)."""
        if split == "meta-test" or not self.spec.val_fraction:
            return None
        if self._pools is None:
            self._split("train")
            self._pools = val_pool_split(self._labels["train"], self.spec.val_fraction)
        return self._pools[0] if split == "meta-train" else self._pools[1]

    def partition(self, split: str, index: int) -> np.ndarray:
        """num_agents x S int64 indices into the dataset split: every agent's samples of this task."""
        data_split = dataset_split_of(split)
        self._split(data_split)
        pool_N = self.pool(split)
        labels_N = self._labels[data_split] if pool_N is None else self._labels[data_split][pool_N]
        rows_AS = partition(
            labels_N,
            method=self.spec.partition,
            num_agents=self.num_agents,
            samples_per_agent=self.samples_per_agent,
            rng=numpy_rng(self.seed, "partition", split, index),
            alpha=self.spec.alpha,
            shards_per_agent=self.spec.shards_per_agent,
        )
        return rows_AS if pool_N is None else pool_N[rows_AS]

    def task(self, split: str, index: int, agents: Sequence[int] | torch.Tensor | None = None) -> TaskData:
        """Task ``index`` of ``split`` ("meta-train", "meta-val", "meta-test") for ``agents`` (None = all).

        The result depends only on (seed, split, index) and the agent ids: the rows of agents [3, 5]
        equal rows 3 and 5 of the full task. Agents are returned sorted.
        """
        data_split = dataset_split_of(split)
        if isinstance(index, bool) or not isinstance(index, int | np.integer) or index < 0:
            raise InputError([f"task index must be a non-negative integer, got {index!r}"])
        agents_A = self._agent_ids(agents)
        augmentation = self.augmentation(split, int(index))
        features_NP = self.features(data_split, augmentation)
        labels_N = self._labels[data_split]
        rows_AS = self.partition(split, int(index))[agents_A.numpy()]
        # Gather in NumPy (views of the cached CPU tensors): single-threaded and ~1 ms, where torch's
        # intra-op thread pool can take tens of ms for these small copies on a busy machine.
        x_ASP = features_NP.numpy()[rows_AS]
        y_AS = labels_N[rows_AS]
        num_train = self.spec.num_train

        def own(array: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(array))

        return TaskData(
            agents=agents_A,
            train_x=own(x_ASP[:, :num_train]),
            train_y=own(y_AS[:, :num_train]),
            heldout_x=own(x_ASP[:, num_train:]),
            heldout_y=own(y_AS[:, num_train:]),
            num_classes=self.num_classes,
            num_features=int(features_NP.shape[1]),
            augmentation=augmentation,
        )

    def _agent_ids(self, agents: Sequence[int] | torch.Tensor | None) -> torch.Tensor:
        if agents is None:
            return torch.arange(self.num_agents, dtype=torch.int64)
        ids = (
            torch.as_tensor(agents, dtype=torch.int64).reshape(-1) if len(agents) else torch.empty(0, dtype=torch.int64)
        )
        ids = torch.sort(ids).values
        if ids.numel() and (int(ids[0]) < 0 or int(ids[-1]) >= self.num_agents):
            raise ValueError(f"agent ids must lie in [0, {self.num_agents}), got {ids.tolist()}")
        if ids.numel() > 1 and bool((ids[1:] == ids[:-1]).any()):
            raise ValueError(f"agent ids must be distinct, got {ids.tolist()}")
        return ids
