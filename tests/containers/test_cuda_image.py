"""The CUDA image builds (it cannot run a job without a GPU here): torch with CUDA, torchvision, Ray, surf-dist."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from _containers import ensure

pytestmark = [pytest.mark.containers, pytest.mark.timeout(1800)]


def test_cuda_image_builds_with_a_cuda_torch(docker: list[str], logs: Path) -> None:
    """Catches a CUDA image that does not build, or whose torch has no CUDA, or whose torchvision, Ray or
    surf-dist does not import (checked without a GPU: importing needs none)."""
    image = ensure("cuda", logs)
    probe = "import os, torch, torchvision, ray, surf_dist.cli; print(os.getuid(), torch.version.cuda)"
    proc = subprocess.run(
        [*docker, "run", "--rm", "--network", "none", image.tag, "python", "-c", probe],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    uid, cuda = proc.stdout.split()
    assert uid != "0" and cuda != "None", proc.stdout
