"""Unit tests for surf_dist.data: keyed generators, partitions, augmentations, loaders, feature maps, tasks.

Shape legend: N images, C channels, H x W pixels, A agents, S samples per agent, P features.
"""

from __future__ import annotations

import gzip
import os
import pickle
import re
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from surf_dist.core.rng import keyed_seed, numpy_rng, torch_generator
from surf_dist.data import features, tasks
from surf_dist.data.augment import AUGMENTATIONS, apply_augmentation, crop_padding, draw_augmentation
from surf_dist.data.datasets import ImageSplit, load_split, read_idx
from surf_dist.data.features import feature_map
from surf_dist.data.partition import partition
from surf_dist.data.tasks import DataSpec, TaskSource, validate_data_spec
from surf_dist.errors import InputError

REPO_ROOT = Path(__file__).resolve().parents[2]


# --- keyed random generators -------------------------------------------------------------------


def test_keyed_seed_is_deterministic_and_key_sensitive() -> None:
    """Catches seeds that change between calls, ignore a key, or collide for different key layouts."""
    assert keyed_seed(7, "meta-train", 3) == keyed_seed(7, "meta-train", 3)
    seeds = {
        keyed_seed(7, "meta-train", 3),
        keyed_seed(8, "meta-train", 3),
        keyed_seed(7, "meta-val", 3),
        keyed_seed(7, "meta-train", 4),
        keyed_seed(7, 3, "meta-train"),
        keyed_seed(7, "3"),
        keyed_seed(7, 3),
        keyed_seed(7, -3),
        keyed_seed(7, 3, 0),
        keyed_seed(7, 2**32 + 3),
        keyed_seed(7),
    }
    assert len(seeds) == 11
    assert all(0 <= s < 2**63 for s in seeds)
    assert keyed_seed(7, np.int64(3)) == keyed_seed(7, 3)
    with pytest.raises(TypeError):
        keyed_seed(7, 1.5)  # type: ignore[arg-type]


def test_keyed_seed_is_stable_across_processes_and_versions() -> None:
    """Catches string keys hashed with the salted hash(), or a changed encoding (old runs not repeating)."""
    golden = 2987511392881149474
    assert keyed_seed(7, "meta-train", 3) == golden
    code = "from surf_dist.core.rng import keyed_seed; print(keyed_seed(7, 'meta-train', 3))"
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert int(out.stdout.strip()) == golden


def test_numpy_and_torch_generators_repeat_and_are_independent() -> None:
    """Catches generators that are not reproducible from (seed, keys) or that share a stream across keys."""
    a = numpy_rng(0, "partition", "meta-train", 1).random(5)
    assert np.array_equal(a, numpy_rng(0, "partition", "meta-train", 1).random(5))
    assert not np.allclose(a, numpy_rng(0, "partition", "meta-train", 2).random(5))
    t = torch.rand(5, generator=torch_generator(0, "crop", 1))
    assert torch.equal(t, torch.rand(5, generator=torch_generator(0, "crop", 1)))
    assert not torch.equal(t, torch.rand(5, generator=torch_generator(0, "crop", 2)))
    assert torch_generator(0, "crop", 1).device.type == "cpu"


# --- partitions --------------------------------------------------------------------------------


def _labels(num_per_class: int = 100, num_classes: int = 10) -> np.ndarray:
    return np.repeat(np.arange(num_classes), num_per_class)


def test_dirichlet_gives_equal_sizes_and_distinct_samples_per_agent() -> None:
    """Catches unequal agent sizes, out-of-range indices or a sample repeated within one agent."""
    labels_N = _labels()
    index_AS = partition(labels_N, method="dirichlet", num_agents=20, samples_per_agent=60, rng=numpy_rng(0))
    assert index_AS.shape == (20, 60) and index_AS.dtype == np.int64
    assert index_AS.min() >= 0 and index_AS.max() < labels_N.shape[0]
    assert all(np.unique(row).shape[0] == 60 for row in index_AS)


def test_dirichlet_skew_falls_as_alpha_grows() -> None:
    """Catches alpha being ignored or inverted: small alpha must concentrate each agent on few classes."""

    def mean_max_class_share(alpha: float) -> float:
        labels_N = _labels()
        index_AS = partition(
            labels_N, method="dirichlet", num_agents=50, samples_per_agent=60, rng=numpy_rng(1), alpha=alpha
        )
        counts_AC = np.stack([np.bincount(labels_N[row], minlength=10) for row in index_AS])
        return float((counts_AC.max(axis=1) / 60).mean())

    skewed, flat = mean_max_class_share(0.1), mean_max_class_share(100.0)
    assert skewed > 0.6
    assert flat < 0.25
    assert skewed > flat + 0.3


def test_dirichlet_is_a_function_of_the_generator_state() -> None:
    """Catches hidden randomness (global NumPy state, set ordering) in the partition."""
    labels_N = _labels()
    np.random.seed(1)
    a = partition(labels_N, method="dirichlet", num_agents=10, samples_per_agent=30, rng=numpy_rng(5))
    np.random.seed(2)
    b = partition(labels_N, method="dirichlet", num_agents=10, samples_per_agent=30, rng=numpy_rng(5))
    c = partition(labels_N, method="dirichlet", num_agents=10, samples_per_agent=30, rng=numpy_rng(6))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_dirichlet_impossible_partition_raises_after_bounded_retries() -> None:
    """Catches an endless redraw loop, or a silent wrong partition, when classes are too small."""
    labels_N = _labels(num_per_class=5, num_classes=2)  # 10 samples per agent needs exactly 5 + 5
    with pytest.raises(InputError) as info:
        partition(labels_N, method="dirichlet", num_agents=4, samples_per_agent=10, rng=numpy_rng(0), alpha=0.01)
    message = str(info.value)
    assert "data.num_train" in message and "data.alpha" in message and "larger dataset" in message


def test_partition_rows_are_not_grouped_by_class() -> None:
    """Catches class-sorted rows, which would give the held-out suffix classes unseen in training."""
    labels_N = _labels()
    index_AS = partition(labels_N, method="dirichlet", num_agents=50, samples_per_agent=60, rng=numpy_rng(2))
    sorted_rows = [bool(np.all(np.diff(labels_N[row]) >= 0)) for row in index_AS]
    assert sum(sorted_rows) < 5


def test_iid_partition_basics() -> None:
    """Catches iid agents that repeat samples or that are skewed towards some classes."""
    labels_N = _labels()
    index_AS = partition(labels_N, method="iid", num_agents=30, samples_per_agent=100, rng=numpy_rng(3))
    assert index_AS.shape == (30, 100)
    assert all(np.unique(row).shape[0] == 100 for row in index_AS)
    share_C = np.bincount(labels_N[index_AS].ravel(), minlength=10) / index_AS.size
    assert np.all(np.abs(share_C - 0.1) < 0.03)
    with pytest.raises(InputError):
        partition(labels_N, method="iid", num_agents=2, samples_per_agent=1001, rng=numpy_rng(3))


def test_shards_partition_uses_few_classes_with_equal_counts() -> None:
    """Catches shards agents holding more classes than asked, or unequal per-class counts."""
    labels_N = _labels()
    index_AS = partition(
        labels_N, method="shards", num_agents=25, samples_per_agent=61, rng=numpy_rng(4), shards_per_agent=2
    )
    assert index_AS.shape == (25, 61)
    for row in index_AS:
        counts = np.bincount(labels_N[row], minlength=10)
        assert sorted(counts[counts > 0].tolist()) == [30, 31]
        assert np.unique(row).shape[0] == 61


def test_partition_lists_every_bad_argument() -> None:
    """Catches argument errors reported one at a time or not naming the field."""
    with pytest.raises(InputError) as info:
        partition(_labels(), method="bogus", num_agents=0, samples_per_agent=0, rng=numpy_rng(0))
    assert len(info.value.problems) == 3
    assert "data.partition" in str(info.value)
    with pytest.raises(InputError, match="data.alpha"):
        partition(_labels(), method="dirichlet", num_agents=2, samples_per_agent=5, rng=numpy_rng(0), alpha=0)


# --- augmentations -----------------------------------------------------------------------------


def _images(num: int = 6, channels: int = 1, size: int = 8) -> torch.Tensor:
    return torch.rand(num, channels, size, size, generator=torch_generator(99, "images"))


@pytest.mark.parametrize("name", [a for a in AUGMENTATIONS if a != "none"])
def test_augmentations_change_images_and_are_deterministic(name: str) -> None:
    """Catches an augmentation that does nothing, changes shapes, or draws from unkeyed randomness."""
    x_NCHW = _images()
    a = apply_augmentation(x_NCHW, name, seed=0, task=1)
    b = apply_augmentation(x_NCHW, name, seed=0, task=1)
    assert a.shape == x_NCHW.shape and a.dtype == x_NCHW.dtype
    assert torch.equal(a, b)
    assert not torch.equal(a, x_NCHW)
    assert torch.equal(apply_augmentation(x_NCHW, "none", seed=0, task=1), x_NCHW)


def test_flips_and_rotation_are_exact() -> None:
    """Catches flips on the wrong axis or a rotation that is not a quarter turn."""
    x_NCHW = _images()
    hflip = apply_augmentation(x_NCHW, "hflip", seed=0, task=0)
    vflip = apply_augmentation(x_NCHW, "vflip", seed=0, task=0)
    assert torch.equal(hflip[..., 0], x_NCHW[..., -1])
    assert torch.equal(vflip[..., 0, :], x_NCHW[..., -1, :])
    y = x_NCHW
    for _ in range(4):
        y = apply_augmentation(y, "rot90", seed=0, task=0)
    assert torch.equal(y, x_NCHW)


def test_crop_is_keyed_by_task_and_pads_by_image_size() -> None:
    """Catches crops that ignore the task key, or padding that is wrong for 32x32 and 8x8 images."""
    assert crop_padding(32) == 4 and crop_padding(28) == 3 and crop_padding(8) == 2
    x_NCHW = _images(num=32)
    a = apply_augmentation(x_NCHW, "crop", seed=0, task=1)
    b = apply_augmentation(x_NCHW, "crop", seed=0, task=2)
    assert not torch.equal(a, b)
    # Every crop is a shifted window of the zero-padded image: the nonzero values are a subset.
    pad = crop_padding(8)
    padded = torch.nn.functional.pad(x_NCHW, (pad, pad, pad, pad))
    for n in range(4):
        windows = padded[n, 0].unfold(0, 8, 1).unfold(1, 8, 1).reshape(-1, 8, 8)
        assert any(torch.equal(a[n, 0], w) for w in windows)


def test_draw_augmentation_is_keyed_and_uses_every_choice() -> None:
    """Catches every task drawing the same augmentation (fed-SURF's bug) or draws not keyed by split."""
    draws = [draw_augmentation(0, "meta-train", i, AUGMENTATIONS) for i in range(200)]
    assert set(draws) == set(AUGMENTATIONS)
    assert draws == [draw_augmentation(0, "meta-train", i, AUGMENTATIONS) for i in range(200)]
    assert draws != [draw_augmentation(0, "meta-val", i, AUGMENTATIONS) for i in range(200)]
    assert draw_augmentation(0, "meta-train", 5, ("none",)) == "none"
    with pytest.raises(InputError, match="data.augmentations"):
        draw_augmentation(0, "meta-train", 0, ("none", "blur"))


# --- dataset loaders ---------------------------------------------------------------------------

IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC = 2051, 2049


def _write_idx(path: Path, array: np.ndarray, *, gz: bool) -> None:
    """Write ``array`` (uint8) as an IDX file: big-endian magic (0x08 = uint8, then ndim) and dims."""
    magic = (0x08 << 8) | array.ndim
    assert magic == {3: IDX_IMAGES_MAGIC, 1: IDX_LABELS_MAGIC}[array.ndim]
    payload = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def _write_idx_split(folder: Path, prefix: str, num: int, *, gz: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images_NHW = rng.integers(0, 256, size=(num, 28, 28), dtype=np.uint8)
    labels_N = rng.integers(0, 10, size=num, dtype=np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    _write_idx(folder / f"{prefix}-images-idx3-ubyte", images_NHW, gz=gz)
    _write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels_N, gz=gz)
    return images_NHW, labels_N


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_loader_reads_raw_and_gzipped_files(tmp_path: Path, gz: bool) -> None:
    """Catches a wrong IDX header parse (endianness, magic), wrong scaling, or gz handling."""
    images_NHW, labels_N = _write_idx_split(tmp_path, "train", 7, gz=gz, seed=0)
    test_images, test_labels = _write_idx_split(tmp_path, "t10k", 3, gz=gz, seed=1)
    train = load_split("mnist", "train", root=str(tmp_path))
    assert train.images.shape == (7, 1, 28, 28) and train.images.dtype == torch.float32
    assert torch.allclose(train.images[:, 0] * 255, torch.from_numpy(images_NHW).float())
    assert train.labels.dtype == torch.int64 and train.labels.tolist() == labels_N.tolist()
    assert train.num_classes == 10
    test = load_split("mnist", "test", root=str(tmp_path))
    assert test.labels.tolist() == test_labels.tolist()
    assert torch.allclose(test.images[:, 0] * 255, torch.from_numpy(test_images).float())


def test_fashion_mnist_loader_reads_torchvision_layout(tmp_path: Path) -> None:
    """Catches the loader missing torchvision's root/FashionMNIST/raw layout."""
    images_NHW, labels_N = _write_idx_split(tmp_path / "FashionMNIST" / "raw", "t10k", 5, gz=True, seed=2)
    split = load_split("fashion-mnist", "test", root=str(tmp_path))
    assert split.labels.tolist() == labels_N.tolist()
    assert float(split.images.max()) <= 1.0 and float(split.images.min()) >= 0.0
    assert torch.allclose(split.images[:, 0] * 255, torch.from_numpy(images_NHW).float())


def test_corrupt_idx_file_is_an_input_error(tmp_path: Path) -> None:
    """Catches a truncated or foreign file crashing with a NumPy error instead of naming the file."""
    _write_idx_split(tmp_path, "train", 4, gz=False, seed=0)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(InputError, match="train-images-idx3-ubyte"):
        load_split("mnist", "train", root=str(tmp_path))
    path.write_bytes(b"PK\x03\x04 not an idx file")
    with pytest.raises(InputError, match="not an IDX file"):
        read_idx(path)


def _write_cifar_batch(path: Path, num: int, seed: int) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    data_NF = rng.integers(0, 256, size=(num, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, size=num).tolist()
    with open(path, "wb") as f:
        pickle.dump({b"batch_label": b"test", b"labels": labels, b"data": data_NF, b"filenames": []}, f, protocol=2)
    return data_NF, labels


def test_cifar10_loader_reads_pickle_batches(tmp_path: Path) -> None:
    """Catches wrong channel order/reshape of CIFAR-10 rows or batches read out of order."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    written = [_write_cifar_batch(folder / f"data_batch_{i}", 2, seed=i) for i in range(1, 6)]
    test_data, test_labels = _write_cifar_batch(folder / "test_batch", 3, seed=9)
    train = load_split("cifar10", "train", root=str(tmp_path))
    assert train.images.shape == (10, 3, 32, 32)
    assert train.labels.tolist() == sum((labels for _, labels in written), [])
    first = written[0][0][0]  # channel-major: 1024 red, 1024 green, 1024 blue
    assert torch.allclose(train.images[0, 1] * 255, torch.from_numpy(first[1024:2048].reshape(32, 32)).float())
    test = load_split("cifar10", "test", root=str(tmp_path))
    assert test.labels.tolist() == test_labels
    assert torch.allclose(test.images.reshape(3, -1) * 255, torch.from_numpy(test_data).float())


def test_missing_files_are_each_named_with_the_fix(tmp_path: Path) -> None:
    """Catches missing-data errors that stop at the first file or do not say how to fix it."""
    with pytest.raises(InputError) as info:
        load_split("mnist", "train", root=str(tmp_path))
    problems = info.value.problems
    assert len(problems) == 2
    assert any("train-images-idx3-ubyte" in p for p in problems)
    assert any("train-labels-idx1-ubyte" in p for p in problems)
    assert all("data.root" in p and "data.download=true" in p for p in problems)
    (tmp_path / "cifar-10-batches-py").mkdir()
    _write_cifar_batch(tmp_path / "cifar-10-batches-py" / "data_batch_2", 2, seed=0)
    with pytest.raises(InputError) as info:
        load_split("cifar10", "train", root=str(tmp_path))
    assert len(info.value.problems) == 4
    assert all(f"data_batch_{i}" in str(info.value) for i in (1, 3, 4, 5))


def test_bad_dataset_or_split_name_is_an_input_error() -> None:
    """Catches unknown names passing through to a KeyError deep in a loader."""
    with pytest.raises(InputError) as info:
        load_split("imagenet", "validation")
    assert len(info.value.problems) == 2 and "data.dataset" in str(info.value)


def test_digits_split_is_fixed_stratified_and_disjoint() -> None:
    """Catches a digits split that varies between calls, overlaps, or loses class balance."""
    train, test = load_split("digits", "train"), load_split("digits", "test")
    assert train.images.shape == (1198, 1, 8, 8) and test.images.shape == (599, 1, 8, 8)
    assert float(train.images.max()) <= 1.0
    assert torch.equal(train.images, load_split("digits", "train").images)
    train_rows = {row.numpy().tobytes() for row in train.images.reshape(1198, -1)}
    overlap = sum(row.numpy().tobytes() in train_rows for row in test.images.reshape(599, -1))
    assert overlap < 10  # digits holds a few exact duplicate images; a shared split would give 599
    assert train.labels.bincount().min() >= 110


# --- feature maps ------------------------------------------------------------------------------


def _synthetic_split(num: int = 48, seed: int = 0) -> ImageSplit:
    """Three classes of 8x8 images, each a bright bar at a class-specific row plus noise."""
    g = torch_generator(seed, "synthetic")
    labels_N = torch.arange(num) % 3
    images_NCHW = 0.2 * torch.rand(num, 1, 8, 8, generator=g)
    images_NCHW[torch.arange(num), 0, 1 + 3 * labels_N] += 0.8
    return ImageSplit(images=images_NCHW.clamp(0, 1), labels=labels_N, num_classes=3)


def test_pixels_feature_map_flattens() -> None:
    """Catches pixel features that are rescaled or laid out differently from the images."""
    split = _synthetic_split()
    x_NP = feature_map(split, name="pixels", dataset="digits", train_split=split, cache_dir=None, seed=0)
    assert x_NP.shape == (48, 64) and x_NP.dtype == torch.float32
    assert torch.equal(x_NP, split.images.reshape(48, 64))


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny convolutions run fastest on one thread (several threads on a busy machine: 10x slower)."""
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(num_threads)


def test_cnn_feature_map_runs_caches_and_is_deterministic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_thread: None
) -> None:
    """Catches a cnn map that retrains when cached, differs between runs, or perturbs the global RNG."""
    monkeypatch.setitem(features.TRAIN_SETTINGS, "cnn", {**features.TRAIN_SETTINGS["cnn"], "min_steps": 40})
    train, other = _synthetic_split(seed=0), _synthetic_split(num=12, seed=1)
    rng_state = torch.random.get_rng_state()
    kwargs = {"name": "cnn", "dataset": "synthetic", "train_split": train, "seed": 3}
    x_NP = feature_map(train, cache_dir=tmp_path / "a", **kwargs)
    assert x_NP.shape == (48, 64) and x_NP.dtype == torch.float32 and torch.isfinite(x_NP).all()
    assert torch.equal(torch.random.get_rng_state(), rng_state)
    assert len(list((tmp_path / "a").glob("backbone-*.pt"))) == 1
    assert len(list((tmp_path / "a").glob("features-*.pt"))) == 1
    assert not list((tmp_path / "a").glob("*.tmp"))

    def no_training(*args: object, **kw: object) -> None:
        raise AssertionError("the backbone was retrained although it is cached")

    with monkeypatch.context() as patch:
        patch.setattr(features, "_train", no_training)
        assert torch.equal(feature_map(train, cache_dir=tmp_path / "a", **kwargs), x_NP)  # features cached
        y_NP = feature_map(other, cache_dir=tmp_path / "a", **kwargs)  # new images, cached backbone
        assert y_NP.shape == (12, 64)
    assert torch.equal(feature_map(train, cache_dir=tmp_path / "b", **kwargs), x_NP)  # fresh cache, same result
    assert not torch.equal(feature_map(train, cache_dir=tmp_path / "c", **{**kwargs, "seed": 4}), x_NP)


def test_unknown_feature_map_is_an_input_error() -> None:
    """Catches a bad feature map name falling through to a KeyError."""
    split = _synthetic_split()
    with pytest.raises(InputError, match="data.features"):
        feature_map(split, name="vit", dataset="digits", train_split=split, cache_dir=None, seed=0)


# --- tasks -------------------------------------------------------------------------------------


def test_validate_data_spec_names_every_bad_field() -> None:
    """Catches spec problems reported one at a time or without the data.<field> name."""
    assert validate_data_spec(DataSpec()) == []
    bad = DataSpec(
        dataset="imagenet",
        features="vit",
        partition="random",
        alpha=0.0,
        num_train=0,
        num_heldout=-1,
        shards_per_agent=0,
        augmentations=("none", "blur"),
        feature_device="tpu",
    )
    problems = validate_data_spec(bad)
    fields = {"dataset", "features", "partition", "alpha", "num_train", "num_heldout", "shards_per_agent"}
    fields |= {"augmentations", "feature_device"}
    assert len(problems) == len(fields)
    assert {re.match(r"data\.\w+", problem).group(0) for problem in problems} == {f"data.{f}" for f in fields}
    # a registered dataset's number of classes bounds the shards per agent
    assert validate_data_spec(DataSpec(shards_per_agent=11)) == [
        "data.shards_per_agent: must be an integer in [1, 10], got 11"
    ]
    assert validate_data_spec(DataSpec(augmentations=())) == [
        'data.augmentations: the list is empty; use ["none"] to disable augmentation'
    ]
    with pytest.raises(InputError):
        TaskSource(bad, seed=0, num_agents=4)


@pytest.fixture(scope="module")
def digits_source() -> TaskSource:
    return TaskSource(DataSpec(augmentations=AUGMENTATIONS), seed=11, num_agents=8)


def test_task_is_a_pure_function_of_seed_split_and_index(digits_source: TaskSource) -> None:
    """Catches tasks that depend on call order or on state, or that repeat across indices."""
    a = digits_source.task("meta-train", 2)
    digits_source.task("meta-train", 5)
    b = digits_source.task("meta-train", 2)
    fresh = TaskSource(DataSpec(augmentations=AUGMENTATIONS), seed=11, num_agents=8).task("meta-train", 2)
    for t in (b, fresh):
        assert torch.equal(a.train_x, t.train_x) and torch.equal(a.train_y, t.train_y)
        assert torch.equal(a.heldout_x, t.heldout_x) and torch.equal(a.heldout_y, t.heldout_y)
    other = digits_source.task("meta-train", 3)
    assert not torch.equal(a.train_y, other.train_y)
    assert not torch.equal(a.train_y, digits_source.task("meta-val", 2).train_y)
    assert not torch.equal(
        a.train_y,
        TaskSource(DataSpec(augmentations=AUGMENTATIONS), seed=12, num_agents=8).task("meta-train", 2).train_y,
    )


def test_task_shapes_and_types(digits_source: TaskSource) -> None:
    """Catches wrong train/held-out sizes, dtypes or metadata in TaskData."""
    t = digits_source.task("meta-train", 0)
    assert t.agents.tolist() == list(range(8)) and t.agents.dtype == torch.int64
    assert t.train_x.shape == (8, 45, 64) and t.train_x.dtype == torch.float32
    assert t.heldout_x.shape == (8, 15, 64) and t.heldout_y.shape == (8, 15)
    assert t.train_y.dtype == torch.int64 and int(t.train_y.max()) < 10
    assert t.num_classes == 10 and t.num_features == 64 == digits_source.num_features
    assert t.augmentation in AUGMENTATIONS
    f64 = TaskSource(DataSpec(augmentations=AUGMENTATIONS), seed=11, num_agents=8, dtype=torch.float64).task(
        "meta-train", 0
    )
    assert f64.train_x.dtype == torch.float64 and torch.allclose(f64.train_x.float(), t.train_x)


def test_agent_subset_equals_rows_of_the_full_task(digits_source: TaskSource) -> None:
    """Catches a worker's block of agents seeing data other than its rows of the full task."""
    full = digits_source.task("meta-test", 4)
    part = digits_source.task("meta-test", 4, agents=[5, 3])
    assert part.agents.tolist() == [3, 5]
    assert torch.equal(part.train_x, full.train_x[[3, 5]])
    assert torch.equal(part.heldout_y, full.heldout_y[[3, 5]])
    also = digits_source.task("meta-test", 4, agents=torch.tensor([3, 5]))
    assert torch.equal(also.train_x, part.train_x)
    assert digits_source.task("meta-test", 4, agents=[]).train_x.shape == (0, 45, 64)
    with pytest.raises(ValueError):
        digits_source.task("meta-test", 4, agents=[8])


def test_meta_test_draws_from_the_test_split_and_meta_train_from_train() -> None:
    """Catches meta-test tasks built from training images (leaking the test set the other way round)."""
    source = TaskSource(DataSpec(augmentations=("none",)), seed=0, num_agents=6)
    train_rows = {r.numpy().tobytes() for r in load_split("digits", "train").images.reshape(-1, 64)}
    test_rows = {r.numpy().tobytes() for r in load_split("digits", "test").images.reshape(-1, 64)}
    test_task = source.task("meta-test", 0)
    rows = test_task.train_x.reshape(-1, 64)
    assert all(r.numpy().tobytes() in test_rows for r in rows)
    assert sum(r.numpy().tobytes() in train_rows for r in rows) < 10  # only digits' few duplicate images
    for split in ("meta-train", "meta-val"):
        rows = source.task(split, 0).heldout_x.reshape(-1, 64)
        assert all(r.numpy().tobytes() in train_rows for r in rows)


def test_default_spec_fits_100_agents_on_digits() -> None:
    """Catches the headline set-up (100 agents x 60 samples, alpha 0.7, digits) becoming impossible."""
    task = TaskSource(DataSpec(), seed=0, num_agents=100).task("meta-train", 0)
    assert task.train_x.shape == (100, 45, 64)
    # Held-out labels come from the agent's own mix: mostly classes it also trains on.
    seen = [np.isin(h.numpy(), t.numpy()).mean() for h, t in zip(task.heldout_y, task.train_y, strict=True)]
    assert float(np.mean(seen)) > 0.9


def test_backbone_features_are_standardised_with_train_statistics(monkeypatch: pytest.MonkeyPatch) -> None:
    """Catches backbone features left unscaled, or scaled with statistics of each augmented split."""

    def fake_map(split: ImageSplit, **kwargs: object) -> torch.Tensor:
        return 3.0 * split.images.reshape(split.images.shape[0], -1) + 5.0

    monkeypatch.setattr(tasks, "feature_map", fake_map)
    source = TaskSource(DataSpec(features="cnn", augmentations=("vflip",)), seed=0, num_agents=4)
    train_NP = source.features("train", "none")
    live_P = train_NP.std(0) > 0
    assert torch.allclose(train_NP.mean(0), torch.zeros(64), atol=1e-4)
    assert torch.allclose(train_NP.std(0)[live_P], torch.ones(int(live_P.sum())), atol=1e-4)
    raw_test = 3.0 * load_split("digits", "test").images.reshape(-1, 64) + 5.0
    mean_P, std_P = source._train_stats()
    assert torch.allclose(source.features("test", "none"), features.standardise(raw_test, mean_P, std_P))
    assert source.task("meta-train", 0).augmentation == "vflip"


def test_task_rejects_unknown_split(digits_source: TaskSource) -> None:
    """Catches a misspelt split silently mapping to some dataset split."""
    with pytest.raises(InputError, match="meta-train"):
        digits_source.task("train", 0)
