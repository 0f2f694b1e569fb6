"""Frozen feature maps: raw pixels, or the penultimate layer of a backbone trained once and cached.

Shape legend:
    N  images,  C  channels,  H, W  height and width
    P  feature dimension (H·W·C for pixels, 64 for cnn, 512 for resnet18)
    K  classes

The paper (docs/method.md) trains only a softmax layer on frozen ResNet-18 features of a backbone that was
probably trained on CIFAR-10 itself; its checkpoint is not published. surf-dist therefore trains its
own backbone, briefly, on the dataset's *train* split, and **never downloads pretrained weights**
(torchvision's ``resnet18(weights=None)``). Two backbones:

    cnn       2 conv layers (16, 32 channels, 3x3, ReLU, one 2x2 max-pool when H >= 16), adaptive
              average pool to 4x4, linear 512 -> 64 + ReLU (the features), linear 64 -> K (the head).
    resnet18  torchvision ResNet-18, CIFAR variant: 3x3 stride-1 stem, no max-pool; the 512-d
              global-average-pooled output is the feature.

Training is seeded and deterministic on one device: Adam, cross-entropy, mini-batches shuffled by a
keyed generator; module initialisation runs under ``torch.random.fork_rng`` so the caller's global
RNG state is neither read nor changed. The trained backbone and every feature matrix are cached in
``cache_dir`` (default ``~/.cache/surf-dist``) as ``.pt`` files named by a hash of (dataset, feature
map, training settings, seed, and a digest of the images), written atomically (temp file, fsync,
``os.replace``), so concurrent workers never read half a file and all use the same features.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from surf_dist.core.rng import keyed_seed, torch_generator
from surf_dist.data.datasets import ImageSplit
from surf_dist.data.spec import FEATURE_MAPS
from surf_dist.errors import InputError
from surf_dist.rundir.atomic import torch_save_atomic

__all__ = ["FEATURE_MAPS", "TRAIN_SETTINGS", "default_cache_dir", "feature_map", "standardise"]

_CACHE_VERSION = 1

# Backbone training settings; all of them enter the cache key. Epochs are raised to reach
# ``min_steps`` optimiser steps on small datasets (digits: 1,198 images).
TRAIN_SETTINGS: dict[str, dict[str, Any]] = {
    "cnn": {"epochs": 3, "min_steps": 300, "batch_size": 64, "lr": 3e-3, "feature_dim": 64},
    "resnet18": {"epochs": 3, "min_steps": 300, "batch_size": 128, "lr": 1e-3, "feature_dim": 512},
}
_EVAL_BATCH = 1024


def default_cache_dir() -> Path:
    """Where features and backbones are cached when ``data.cache_dir`` is not set."""
    return Path.home() / ".cache" / "surf-dist"


def feature_map(
    split: ImageSplit,
    *,
    name: str,
    dataset: str,
    train_split: ImageSplit,
    cache_dir: str | Path | None,
    seed: int,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Features of every image of ``split``: N x P float32.

    Args:
        split: the images to map (any augmentation of a train or test split).
        name: one of :data:`FEATURE_MAPS`.
        dataset: the dataset's name (enters the cache key).
        train_split: the un-augmented train split the backbone is trained on (unused for pixels).
        cache_dir: cache folder; None means :func:`default_cache_dir`.
        seed: the run seed; the backbone's initialisation and shuffling are keyed by it.
        device: where to train and run the backbone (default CPU, deterministic). Results on
            another device differ in the last bits; the first writer of a cache entry defines it.

    Raises:
        InputError: unknown feature map name.
    """
    if name not in FEATURE_MAPS:
        raise InputError([f"data.features: unknown feature map {name!r}; use one of {', '.join(FEATURE_MAPS)}"])
    images_NCHW = split.images
    if name == "pixels":
        return images_NCHW.reshape(images_NCHW.shape[0], -1).to(torch.float32).clone()

    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    backbone_key = _hash_key(
        {
            "kind": "backbone",
            "version": _CACHE_VERSION,
            "dataset": dataset,
            "map": name,
            "settings": TRAIN_SETTINGS[name],
            "seed": seed,
            "train": _digest(train_split),
        }
    )
    features_key = _hash_key({"kind": "features", "backbone": backbone_key, "images": _digest(split)})
    features_path = cache / f"features-{dataset}-{name}-{features_key}.pt"
    cached = _load(features_path)
    if isinstance(cached, torch.Tensor) and cached.shape[0] == images_NCHW.shape[0]:
        return cached

    cache.mkdir(parents=True, exist_ok=True)
    backbone_path = cache / f"backbone-{dataset}-{name}-{backbone_key}.pt"
    backbone_seed = keyed_seed(seed, "backbone", dataset, name)
    model = _build(name, train_split, seed=backbone_seed)
    state = _load(backbone_path)
    if isinstance(state, dict):
        model.load_state_dict(state)
    else:
        _train(model, train_split, settings=TRAIN_SETTINGS[name], seed=backbone_seed, device=torch.device(device))
        torch_save_atomic(backbone_path, {k: v.detach().cpu() for k, v in model.state_dict().items()})
    features_NP = _extract(model, images_NCHW, device=torch.device(device))
    torch_save_atomic(features_path, features_NP)
    return features_NP


def standardise(features_NP: torch.Tensor, mean_P: torch.Tensor, std_P: torch.Tensor) -> torch.Tensor:
    """(x - mean) / std per feature; features with zero spread (dead units) are only centred."""
    return (features_NP - mean_P) / torch.where(std_P > 0, std_P, torch.ones_like(std_P))


# --- backbones -----------------------------------------------------------------------------------


class SmallCNN(nn.Module):
    """2 conv layers + linear head; ``features`` returns the 64-d penultimate layer (after ReLU)."""

    def __init__(self, in_channels: int, height: int, num_classes: int, feature_dim: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 16, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, padding=1)
        self.pool_first = height >= 16  # 8x8 digits keep their resolution through conv1
        self.fc = nn.Linear(32 * 4 * 4, feature_dim)
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x_NCHW: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv1(x_NCHW))
        h = F.max_pool2d(h, 2) if self.pool_first else h
        h = F.adaptive_avg_pool2d(F.relu(self.conv2(h)), 4)
        return F.relu(self.fc(h.flatten(1)))

    def forward(self, x_NCHW: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x_NCHW))


class CifarResNet18(nn.Module):
    """torchvision ResNet-18 (no pretrained weights) with the CIFAR stem: 3x3 stride-1 conv, no max-pool."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        from torchvision.models import resnet18

        net = resnet18(weights=None, num_classes=num_classes)
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()  # type: ignore[assignment]
        self.net = net

    def features(self, x_NCHW: torch.Tensor) -> torch.Tensor:
        net = self.net
        h = net.maxpool(net.relu(net.bn1(net.conv1(x_NCHW))))
        h = net.layer4(net.layer3(net.layer2(net.layer1(h))))
        return torch.flatten(net.avgpool(h), 1)

    def forward(self, x_NCHW: torch.Tensor) -> torch.Tensor:
        return self.net.fc(self.features(x_NCHW))


def _build(name: str, train_split: ImageSplit, *, seed: int) -> nn.Module:
    """The untrained backbone, initialised from ``seed`` without touching the caller's global RNG."""
    _, channels, height, _ = train_split.images.shape
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if name == "cnn":
            return SmallCNN(channels, height, train_split.num_classes, TRAIN_SETTINGS["cnn"]["feature_dim"])
        return CifarResNet18(channels, train_split.num_classes)


def _train(
    model: nn.Module, train_split: ImageSplit, *, settings: dict[str, Any], seed: int, device: torch.device
) -> None:
    """Train ``model`` to classify ``train_split``; batches shuffled by a generator keyed by ``seed``."""
    model.to(device).train()
    images_NCHW, labels_N = train_split.images, train_split.labels
    num_images = images_NCHW.shape[0]
    batch_size = min(settings["batch_size"], num_images)
    steps_per_epoch = math.ceil(num_images / batch_size)
    num_epochs = max(settings["epochs"], math.ceil(settings["min_steps"] / steps_per_epoch))
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["lr"])
    shuffle = torch_generator(seed, "shuffle")
    for _epoch in range(num_epochs):
        order_N = torch.randperm(num_images, generator=shuffle)
        for start in range(0, num_images, batch_size):
            batch = order_N[start : start + batch_size]
            if batch.numel() < 2 <= num_images:  # BatchNorm cannot train on a single image
                continue
            x_BCHW, y_B = images_NCHW[batch].to(device), labels_N[batch].to(device)
            loss = F.cross_entropy(model(x_BCHW), y_B)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    model.eval()


@torch.no_grad()
def _extract(model: nn.Module, images_NCHW: torch.Tensor, *, device: torch.device) -> torch.Tensor:
    model.to(device).eval()
    chunks = [
        model.features(images_NCHW[i : i + _EVAL_BATCH].to(device)).cpu()  # type: ignore[operator]
        for i in range(0, images_NCHW.shape[0], _EVAL_BATCH)
    ]
    return torch.cat(chunks).to(torch.float32).contiguous()


# --- cache ---------------------------------------------------------------------------------------


def _digest(split: ImageSplit) -> str:
    """Content digest of a split's images and labels (BLAKE2b; ~1 GB/s, seconds for CIFAR-10)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((tuple(split.images.shape), str(split.images.dtype), split.num_classes)).encode())
    h.update(split.images.detach().cpu().contiguous().numpy().tobytes())
    h.update(split.labels.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _hash_key(fields: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:24]


def _load(path: Path) -> Any:
    """The cached object at ``path``, or None when absent or unreadable (then it is recomputed)."""
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return None
