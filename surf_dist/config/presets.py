"""Presets: whole configs by name (``--preset``), as overrides of the schema's defaults."""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    # the main job: digits, 100 agents on the paper's degree-3 graph, L = 10, K = 2, B = 10
    "default": {},
    # seconds: for tests and checks
    "smoke": {
        "topology": {"spec": "kregular:n=8,degree=3"},
        "data": {
            "num_train": 20,
            "num_heldout": 10,
            "num_meta_train": 6,
            "num_meta_val": 2,
            "num_meta_test": 2,
        },
        "model": {"num_layers": 3, "num_hops": 2, "batch_size": 5},
        "train": {"epochs": 2, "checkpoint_every": 4, "lr": 3e-3},
    },
    # the paper's star / classical FL set-up (eq. 13): a server and 99 clients, 10 uploads per round, K = 1
    "star": {
        "topology": {"spec": "star:n=100"},
        "model": {"variant": "star", "num_hops": 1, "uploads_per_round": 10},
        "train": {"epsilon": 0.1, "lr": 1e-3},
        "eval": {"baselines": ["fedavg", "scaffold", "fedprox", "feddyn", "moon", "local", "centralised"]},
    },
    # the second main job, on real data: Fashion-MNIST (Debian's dataset-fashion-mnist) through the small CNN's
    # 64-d features, 100 agents on the paper's degree-3 graph; meta-val tasks from 10,000 train images kept
    # out of meta-training; 30 meta-test tasks from the test split. Tuned on the meta-val tasks only (README,
    # "Reproducing the paper"): U-DGD's steps and dropout by its meta-val accuracy (1,200 steps with dropout
    # 0.2: 0.919; 2,000 or 2,400 steps gave no more; dropout 0.5 / 0: 0.915; lr 3e-3: a worse validation
    # loss), the best checkpoint of every 200 steps kept; each method's step (and constants) the best of
    # {0.1, 0.3, 1, 3, 10} at 200 rounds (`surf-dist tune-baselines --preset fashion`).
    "fashion": {
        "data": {
            "dataset": "fashion-mnist",
            "features": "cnn",
            "val_fraction": 1 / 6,
            "num_meta_train": 1200,
            "num_meta_val": 20,
            "num_meta_test": 30,
        },
        "model": {"dropout": 0.2},
        "train": {"validate_every": 200},
        # every method tuned on fashion's meta-val tasks (docs/tuning_fashion.json)
        "eval": {
            "dgd_step": 0.3,
            "dsgd_step": 0.3,
            "dfedavgm_step": 0.1,
            "dfedavgm_momentum": 0.5,
            "gt_step": 1.0,
            "extra_step": 0.3,
            "nids_step": 1.0,
            "choco_step": 1.0,
            "choco_gamma": 0.3,
            "pushsum_step": 1.0,
            "local_step": 10.0,
            "centralised_step": 3.0,
        },
    },
    # the paper's scale (docs/method.md): CIFAR-10 ResNet-18 features, 600 tasks; for a GPU
    "paper": {
        "data": {
            "dataset": "cifar10",
            "features": "resnet18",
            "num_meta_train": 510,
            "num_meta_val": 90,
            "num_meta_test": 30,
            "augmentations": ["crop", "hflip", "vflip", "rot90"],
        },
        "model": {"init": "paper", "tap_init": "paper", "normalisation": "agent-batch", "w0_std": 5.0},
        "train": {"epochs": 500, "lr": 1e-2, "dual_lr": 1e-2, "epsilon": 0.01, "checkpoint_every": 100},
        "eval": {"rounds_factor": 10},
        "run": {"device": "cuda"},
    },
}
