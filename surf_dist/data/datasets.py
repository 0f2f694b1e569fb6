"""Image datasets as tensors: scikit-learn ``digits`` (embedded, offline), MNIST, Fashion-MNIST, CIFAR-10.

Shape legend:
    N  images in a split
    C  channels (1 for digits/MNIST/Fashion-MNIST, 3 for CIFAR-10)
    H, W  image height and width (8 for digits, 28 for (Fashion-)MNIST, 32 for CIFAR-10)

The file formats are read here with NumPy and ``pickle`` (no torchvision needed to *read*):
    - MNIST / Fashion-MNIST: the IDX files ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
      ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each raw or gzipped (``.gz``).
    - CIFAR-10: the Python pickle batches ``cifar-10-batches-py/data_batch_1..5`` and ``test_batch``.
torchvision is used only to download (``download=True``), into the layout read here.

Where the files are looked for (first hit wins, per file):
    - ``root`` given: ``root``, then torchvision's layout ``root/MNIST/raw`` or
      ``root/FashionMNIST/raw``; for CIFAR-10 ``root/cifar-10-batches-py``, then ``root``.
    - ``root`` is None: the default data root ``~/.cache/surf-dist/data`` the same way, and for
      Fashion-MNIST also the Debian package ``dataset-fashion-mnist``
      (``/usr/share/datasets/fashion-mnist``, or wherever ``dpkg -L`` says it is).
"""

from __future__ import annotations

import gzip
import pickle
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from surf_dist.data.arrays import Arrays
from surf_dist.errors import InputError
from surf_dist.plugins import DATASETS
from surf_dist.plugins.params import build

__all__ = [
    "DATASET_SPLITS",
    "ImageSplit",
    "as_image_split",
    "check_files",
    "default_data_root",
    "load_split",
    "read_idx",
]

DATASET_SPLITS = ("train", "test")

_DIGITS_TEST_FRACTION = 1.0 / 3.0  # 1,797 images -> 1,198 train / 599 test, stratified
_DIGITS_SPLIT_SEED = 0  # a constant, not the run seed: the digits split is part of the dataset
_DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_TORCHVISION_DIR = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
_CIFAR_DIR = "cifar-10-batches-py"
_CIFAR_FILES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
_IDX_DTYPES: dict[int, np.dtype] = {  # IDX type byte -> big-endian NumPy dtype
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


@dataclass(frozen=True)
class ImageSplit:
    """One split of an image dataset.

    Attributes:
        images: N x C x H x W float32, values in [0, 1].
        labels: N int64, values in [0, num_classes).
        num_classes: number of classes of the dataset (10 for the four built-ins).
        kind: "images", or "features" for a dataset given as N × P features.
    """

    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    kind: str = "images"  # "features": N × 1 × 1 × P rows of a feature dataset (no image augmentations, pixels only)


def default_data_root() -> Path:
    """Where datasets are looked for and downloaded when ``data.root`` is not set."""
    return Path.home() / ".cache" / "surf-dist" / "data"


def load_split(
    name: str, split: str, *, root: str | None = None, download: bool = False, params: Any = None
) -> ImageSplit:
    """Split ``split`` ("train" or "test") of the registered dataset ``name`` (``data.catalog``; plugins add more),
    with its settings ``params`` (default: its defaults).

    Raises:
        InputError: unknown name or split; files missing (each one named) while ``download`` is
            False; a file that is not in the expected format; arrays of the wrong shape.
    """
    problems = []
    if name not in DATASETS:
        problems.append(DATASETS.unknown(name))
    if split not in DATASET_SPLITS:
        problems.append(f"unknown dataset split {split!r}; use one of {', '.join(DATASET_SPLITS)}")
    if problems:
        raise InputError(problems)
    entry = DATASETS.get(name)
    if params is None:
        params = build(DATASETS.params_of(name), {})
    try:
        if getattr(entry, "files", False):
            loaded = entry(split, params, root=root, download=download)
        else:
            loaded = entry(split, params)
    except InputError:
        raise
    except Exception as exc:  # a plugin's loader: name it, and where it failed
        raise InputError(
            [f"data.dataset = {name!r}: its loader failed on the {split} split: {type(exc).__name__}: {exc}"]
        ) from exc
    return as_image_split(loaded, f"data.dataset = {name!r} ({split} split)")


def check_files(name: str, *, root: str | None = None, download: bool = False, params: Any = None) -> None:
    """Before any worker starts: every file of both splits of dataset ``name`` is where its loader looks
    (downloaded first when ``download``); a dataset without files (digits, arrays) has nothing to check.

    Raises:
        InputError: one problem per missing file, each with the fix.
    """
    if name not in DATASETS:
        return
    check = getattr(DATASETS.get(name), "check_files", None)
    if check is not None:
        check(params if params is not None else build(DATASETS.params_of(name), {}), root=root, download=download)


def as_image_split(loaded: Any, source: str) -> ImageSplit:
    """A loader's result as an ``ImageSplit``: an ``Arrays`` (features N × P become N × 1 × 1 × P "images" of
    kind ``features``) or an ``ImageSplit`` as it is. Raises InputError for shapes and labels that do not fit."""
    if isinstance(loaded, ImageSplit):
        return loaded
    if not isinstance(loaded, Arrays):
        raise InputError([f"{source}: the loader returned {type(loaded).__name__}; return surf_dist.Arrays(x, labels)"])
    x = torch.as_tensor(np.asarray(loaded.x) if not isinstance(loaded.x, torch.Tensor) else loaded.x)
    labels = torch.as_tensor(
        np.asarray(loaded.labels) if not isinstance(loaded.labels, torch.Tensor) else loaded.labels
    )
    problems = []
    if x.dim() not in (2, 4):
        problems.append(f"{source}: x has shape {tuple(x.shape)}; give features N × P or images N × C × H × W")
    if labels.dim() != 1 or labels.shape[0] != x.shape[0]:
        problems.append(f"{source}: labels have shape {tuple(labels.shape)}; give one label per sample ({x.shape[0]})")
    if x.is_floating_point() is False and x.dim() in (2, 4):
        x = x.to(torch.float32)
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        problems.append(f"{source}: labels are {labels.dtype}; give integer class ids 0..C-1")
    if problems:
        raise InputError(problems)
    num_classes = (
        loaded.num_classes if loaded.num_classes is not None else int(labels.max()) + 1 if labels.numel() else 0
    )
    kind = "features" if x.dim() == 2 else "images"
    images = x.to(torch.float32)[:, None, None, :] if kind == "features" else x.to(torch.float32)
    split = _checked_split(images, labels.to(torch.int64), int(num_classes), source)
    return ImageSplit(images=split.images, labels=split.labels, num_classes=split.num_classes, kind=kind)


# --- digits -----------------------------------------------------------------------------------


def load_digits(split: str) -> ImageSplit:
    """scikit-learn's 8x8 digits (ships with scikit-learn), scaled by 1/16, fixed stratified split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images_NHW = np.asarray(bunch.images, dtype=np.float32) / 16.0
    labels_N = np.asarray(bunch.target, dtype=np.int64)
    index_N = np.arange(labels_N.shape[0])
    train_index, test_index = train_test_split(
        index_N, test_size=_DIGITS_TEST_FRACTION, stratify=labels_N, random_state=_DIGITS_SPLIT_SEED
    )
    chosen = np.sort(train_index if split == "train" else test_index)
    images = torch.from_numpy(np.ascontiguousarray(images_NHW[chosen][:, None]))
    return ImageSplit(images=images, labels=torch.from_numpy(labels_N[chosen]), num_classes=10)


# --- MNIST / Fashion-MNIST (IDX) ----------------------------------------------------------------


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (raw or gzipped; detected from its first bytes) into an array of its shape.

    Format: 2 zero bytes, a type byte (0x08 = uint8), a byte with the number of dimensions, then
    each dimension as a big-endian int32, then the data (big-endian). Images have magic 2051
    (0x00000803, 3 dims), labels 2049 (0x00000801, 1 dim).
    """
    path = Path(path)
    with open(path, "rb") as raw:
        is_gzip = raw.read(2) == b"\x1f\x8b"
    opener = gzip.open if is_gzip else open
    try:
        with opener(path, "rb") as f:
            buffer = f.read()
    except (OSError, EOFError) as exc:
        raise InputError([f"{path}: cannot read ({exc}); delete it and place a fresh copy"]) from exc
    if len(buffer) < 4 or buffer[0] != 0 or buffer[1] != 0 or buffer[2] not in _IDX_DTYPES:
        raise InputError([f"{path}: not an IDX file (bad magic number); replace it with the original file"])
    dtype = _IDX_DTYPES[buffer[2]]
    num_dims = buffer[3]
    header_bytes = 4 + 4 * num_dims
    shape = tuple(int(d) for d in np.frombuffer(buffer, dtype=">u4", count=num_dims, offset=4))
    num_values = int(np.prod(shape)) if shape else 0
    if len(buffer) != header_bytes + num_values * dtype.itemsize:
        raise InputError(
            [
                f"{path}: IDX header says shape {shape} but the file holds {len(buffer) - header_bytes} "
                "data bytes (truncated download?); delete it and place a fresh copy"
            ]
        )
    return np.frombuffer(buffer, dtype=dtype, count=num_values, offset=header_bytes).reshape(shape)


def _debian_fashion_mnist_dir() -> Path | None:
    """The directory of the Debian package ``dataset-fashion-mnist``, if it is installed."""
    if (_DEBIAN_FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").is_file():
        return _DEBIAN_FASHION_MNIST_DIR
    if shutil.which("dpkg") is None:
        return None
    try:
        listing = subprocess.run(
            ["dpkg", "-L", "dataset-fashion-mnist"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    for line in listing.stdout.splitlines():
        if line.endswith("train-images-idx3-ubyte.gz"):
            return Path(line).parent
    return None


def _idx_search_dirs(name: str, root: str | None) -> list[Path]:
    base = Path(root).expanduser() if root is not None else default_data_root()
    dirs = [base, base / _TORCHVISION_DIR[name] / "raw"]
    if root is None and name == "fashion-mnist":
        debian = _debian_fashion_mnist_dir()
        if debian is not None:
            dirs.append(debian)
    return dirs


def _find_file(stem: str, dirs: list[Path], suffixes: tuple[str, ...]) -> Path | None:
    for directory in dirs:
        for suffix in suffixes:
            candidate = directory / f"{stem}{suffix}"
            if candidate.is_file():
                return candidate
    return None


_DEBIAN_HINT = "; or install Debian's package: apt-get install dataset-fashion-mnist (searched when data.root is unset)"


def _missing_problems(name: str, missing: list[str], dirs: list[Path], *, gz: bool) -> list[str]:
    where = ", ".join(str(d) for d in dirs)
    either = " (raw or .gz)" if gz else ""
    debian = _DEBIAN_HINT if name == "fashion-mnist" else ""
    return [
        f"data.root: {name} file {stem!r}{either} not found (looked in {where}); set --set data.root=DIR to "
        f"a folder that holds it, or --set data.download=true to download {name}{debian}"
        for stem in missing
    ]


def locate_files(name: str, *, root: str | None, download: bool) -> None:
    """Every file of both splits of the file dataset ``name`` (mnist, fashion-mnist, cifar10) is where the loader
    looks (downloaded first when ``download``); InputError naming each missing one otherwise."""
    files = _CIFAR_FILES if name == "cifar10" else _IDX_FILES
    _locate(name, files["train"] + files["test"], root, download)


def _locate(name: str, stems: tuple[str, ...], root: str | None, download: bool) -> list[Path]:
    """Paths of the files ``stems`` of dataset ``name``, downloading first if asked and needed.

    Raises:
        InputError: one problem per file still missing, each with the fix.
    """
    gz = name != "cifar10"
    suffixes = ("", ".gz") if gz else ("",)

    def search() -> tuple[list[Path], dict[str, Path | None]]:
        dirs = _cifar_search_dirs(root) if name == "cifar10" else _idx_search_dirs(name, root)
        return dirs, {stem: _find_file(stem, dirs, suffixes) for stem in stems}

    dirs, found = search()
    if download and None in found.values():
        _download_torchvision(name, root)
        dirs, found = search()
    missing = [stem for stem, path in found.items() if path is None]
    if missing:
        raise InputError(_missing_problems(name, missing, dirs, gz=gz))
    return [path for path in found.values() if path is not None]


def load_idx_dataset(name: str, split: str, *, root: str | None, download: bool) -> ImageSplit:
    images_path, labels_path = _locate(name, _IDX_FILES[split], root, download)
    images_NHW, labels_N = read_idx(images_path), read_idx(labels_path)
    problems = []
    if images_NHW.ndim != 3 or images_NHW.dtype != np.uint8:
        problems.append(f"{images_path}: expected uint8 images N x H x W, got {images_NHW.dtype} {images_NHW.shape}")
    if labels_N.ndim != 1:
        problems.append(f"{labels_path}: expected labels of shape N, got {labels_N.shape}")
    elif images_NHW.shape[0] != labels_N.shape[0]:
        problems.append(
            f"{images_path}, {labels_path}: {images_NHW.shape[0]} images but {labels_N.shape[0]} labels; "
            "use the images and labels files of the same split"
        )
    if problems:
        raise InputError(problems)
    images = torch.from_numpy(images_NHW.astype(np.float32) / 255.0)[:, None]
    labels = torch.from_numpy(labels_N.astype(np.int64))
    return _checked_split(images, labels, 10, str(labels_path))


def _download_torchvision(name: str, root: str | None) -> None:
    """Download with torchvision into ``root`` (or the default data root), in its standard layout."""
    import torchvision.datasets as tvd

    target = Path(root).expanduser() if root is not None else default_data_root()
    target.mkdir(parents=True, exist_ok=True)
    cls = {"mnist": tvd.MNIST, "fashion-mnist": tvd.FashionMNIST, "cifar10": tvd.CIFAR10}[name]
    try:
        for train in (True, False):
            cls(root=str(target), train=train, download=True)
    except Exception as exc:  # network down, disk full, bad checksum: say so and how to work around it
        raise InputError(
            [
                f"data.download: downloading {name} into {target} failed ({type(exc).__name__}: {exc}); "
                f"place the files by hand and set --set data.root=DIR"
            ]
        ) from exc


# --- CIFAR-10 (pickle batches) -----------------------------------------------------------------


def _cifar_search_dirs(root: str | None) -> list[Path]:
    base = Path(root).expanduser() if root is not None else default_data_root()
    return [base / _CIFAR_DIR, base]


def load_cifar10(split: str, *, root: str | None, download: bool) -> ImageSplit:
    paths = _locate("cifar10", _CIFAR_FILES[split], root, download)
    batches = [_read_cifar_batch(path) for path in paths]
    data_NF = np.concatenate([data for data, _ in batches])
    images = torch.from_numpy(data_NF.reshape(-1, 3, 32, 32).astype(np.float32) / 255.0)
    labels = torch.from_numpy(np.concatenate([labels for _, labels in batches]).astype(np.int64))
    return _checked_split(images, labels, 10, str(paths[0].parent))


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 pickle batch: a dict with b"data" (uint8 N x 3072, channel-major) and b"labels"."""
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
    except Exception as exc:
        raise InputError([f"{path}: not a CIFAR-10 pickle batch ({exc}); replace it with the original file"]) from exc
    if not isinstance(batch, dict):
        raise InputError([f"{path}: expected a dict batch, got {type(batch).__name__}; replace it with the original"])
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if data is None or labels is None:
        raise InputError([f"{path}: batch lacks b'data' or b'labels'; replace it with the original file"])
    data_NF = np.asarray(data, dtype=np.uint8)
    labels_N = np.asarray(labels, dtype=np.int64)
    if data_NF.ndim != 2 or data_NF.shape[1] != 3 * 32 * 32 or data_NF.shape[0] != labels_N.shape[0]:
        raise InputError(
            [
                f"{path}: expected data N x 3072 and N labels, got {data_NF.shape} and {labels_N.shape}; "
                "replace it with the original file"
            ]
        )
    return data_NF, labels_N


def _checked_split(images: torch.Tensor, labels: torch.Tensor, num_classes: int, source: str) -> ImageSplit:
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise InputError(
            [
                f"{source}: labels must lie in [0, {num_classes}), "
                f"found [{int(labels.min())}, {int(labels.max())}]; use the original files"
            ]
        )
    return ImageSplit(images=images.contiguous(), labels=labels, num_classes=num_classes)
