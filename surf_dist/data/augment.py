"""Per-task image augmentations (docs/method.md: each task draws one of crop, hflip, vflip, rot90).

Shape legend:
    N  images,  C  channels,  H, W  height and width

The fed-SURF code draws one torchvision transform per task: RandomCrop(32, padding 4),
RandomHorizontalFlip, RandomVerticalFlip or RandomRotation(90). Here the flips are applied to every
image (a task that drew "hflip" sees its images mirrored), the rotation is an exact quarter turn,
and the crop pads with zeros by ``max(2, H // 8)`` (4 for 32x32 as in the paper, 3 for 28x28, 2 for
8x8 digits: ``H // 8`` alone would give 1 pixel there) and cuts a window at an offset drawn per
image from a generator keyed by ``(seed, task)``.
"none" keeps the images; it is an option because the paper's list has no identity.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from surf_dist.core.rng import numpy_rng, torch_generator
from surf_dist.data.spec import AUGMENTATIONS
from surf_dist.errors import InputError

__all__ = ["AUGMENTATIONS", "apply_augmentation", "crop_padding", "draw_augmentation"]


def _check_names(names: Sequence[str]) -> None:
    problems = [
        f"data.augmentations: unknown augmentation {name!r}; use any of {', '.join(AUGMENTATIONS)}"
        for name in names
        if name not in AUGMENTATIONS
    ]
    if not names:
        problems.append('data.augmentations: the list is empty; use ["none"] to disable augmentation')
    if problems:
        raise InputError(problems)


def draw_augmentation(seed: int, split: str, task: int, choices: Sequence[str]) -> str:
    """The augmentation of task ``task`` of ``split``: uniform over ``choices`` (keyed draw)."""
    _check_names(choices)
    rng = numpy_rng(seed, "augmentation", split, task)
    return choices[int(rng.integers(len(choices)))]


def crop_padding(height: int) -> int:
    """Zero padding of the random crop: 4 for 32x32 (as in the paper), 3 for 28x28, 2 for 8x8."""
    return max(2, height // 8)


def apply_augmentation(images_NCHW: torch.Tensor, name: str, *, seed: int, task: int) -> torch.Tensor:
    """Apply augmentation ``name`` to every image; returns a new N x C x H x W tensor (same dtype).

    Only "crop" is random: image n's window offset (dy, dx) in [0, 2·pad] is drawn from
    ``torch_generator(seed, "crop", task)``, so the result is a pure function of (images, seed, task).
    """
    _check_names([name])
    if images_NCHW.ndim != 4:
        raise ValueError(f"images must be N x C x H x W, got shape {tuple(images_NCHW.shape)}")
    if name == "none":
        return images_NCHW.clone()
    if name == "hflip":
        return torch.flip(images_NCHW, dims=(3,))
    if name == "vflip":
        return torch.flip(images_NCHW, dims=(2,))
    if name == "rot90":
        if images_NCHW.shape[2] != images_NCHW.shape[3]:
            raise ValueError(f"rot90 needs square images, got {tuple(images_NCHW.shape[2:])}")
        return torch.rot90(images_NCHW, k=1, dims=(2, 3))
    return _random_crop(images_NCHW, seed=seed, task=task)


def _random_crop(images_NCHW: torch.Tensor, *, seed: int, task: int) -> torch.Tensor:
    num_images, _, height, width = images_NCHW.shape
    pad = crop_padding(height)
    offsets_N2 = torch.randint(0, 2 * pad + 1, (num_images, 2), generator=torch_generator(seed, "crop", task))
    padded_NCHW = F.pad(images_NCHW, (pad, pad, pad, pad))
    out_NCHW = torch.empty_like(images_NCHW)
    # One slice per distinct offset ((2·pad+1)² of them) instead of one per image.
    code_N = offsets_N2[:, 0] * (2 * pad + 1) + offsets_N2[:, 1]
    for code in torch.unique(code_N).tolist():
        dy, dx = divmod(code, 2 * pad + 1)
        rows = torch.nonzero(code_N == code).squeeze(1)
        out_NCHW[rows] = padded_NCHW[rows, :, dy : dy + height, dx : dx + width]
    return out_NCHW
