"""The datasets that ship with surf-dist (``data.dataset``), registered as a plugin's are.

A registered dataset is a callable ``load(split, params) -> surf_dist.Arrays`` (``split`` is "train" or "test";
``params`` its own settings, an instance of its ``Params``, set as ``data.NAME_FIELD``). Optional attributes:
``Params``; ``num_classes`` (checked before any worker starts); ``files = True`` to be called with ``root=`` and
``download=`` too (``data.root``, ``data.download``); ``check_files(params, root=, download=)``, which raises
``InputError`` for missing files before any worker starts. Every worker calls the loader for itself (raw data
never leaves a worker), so it must give the same arrays everywhere: read a file, or draw from a fixed seed.
This module imports no torch; the loaders import the readers (``data.datasets``) when called.
"""

from __future__ import annotations

from typing import Any

from ..plugins import DATASETS, register_dataset


@register_dataset("digits")
def digits(split: str, params: Any) -> Any:
    """scikit-learn's 8×8 digits (embedded, offline): 1,198 train and 599 test images, a fixed stratified split."""
    from .datasets import load_digits

    return load_digits(split)


digits.num_classes = 10  # type: ignore[attr-defined]


class _Files:
    """A dataset read from files under ``data.root`` (MNIST and Fashion-MNIST IDX files, CIFAR-10 pickles)."""

    num_classes = 10
    files = True

    def __init__(self, name: str) -> None:
        self.name = name
        self.__qualname__ = f"_Files({name})"

    def __call__(self, split: str, params: Any, *, root: str | None, download: bool) -> Any:
        from .datasets import load_cifar10, load_idx_dataset

        if self.name == "cifar10":
            return load_cifar10(split, root=root, download=download)
        return load_idx_dataset(self.name, split, root=root, download=download)

    def check_files(self, params: Any, *, root: str | None, download: bool) -> None:
        from .datasets import locate_files

        locate_files(self.name, root=root, download=download)


for _name in ("fashion-mnist", "mnist", "cifar10"):
    DATASETS.register(_name, _Files(_name), origin=__name__)
