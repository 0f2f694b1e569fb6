"""Summing parameter gradients over workers while the backward still runs (as DDP's buckets do).

Every worker computes the gradient of the same Lagrangian with respect to the shared parameters Θ on its own
agents; Θ's update needs the sum over workers. The parameters are grouped into buckets of about
``bucket_numel`` elements in the order their gradients become ready (the reverse of the forward: the last
layer's local network first). A post-accumulate-grad hook on every parameter counts the bucket down; when its
last gradient has arrived the bucket is flattened and its all-reduce starts asynchronously, on a process
group of its own (so it never interleaves with the halo exchanges and scalar all-reduces the backward itself
runs on the main group), while the backward goes on to earlier layers. ``finish()`` waits for the buckets,
copies the sums back into ``.grad``, and starts any bucket whose parameters got no gradient (reduced as is).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.distributed as dist

BUCKET_NUMEL = 1 << 20  # elements per bucket: ~4 MB in float32, a layer's local network is ~0.9 M


class GradientBuckets:
    """Hooks on ``params`` (all workers' models identical); ``finish()`` after every backward."""

    def __init__(
        self,
        params: Sequence[torch.nn.Parameter],
        group: Any,
        on_reduce: Callable[[torch.Tensor], None],
        bucket_numel: int = BUCKET_NUMEL,
    ) -> None:
        self.group, self.on_reduce = group, on_reduce
        self.buckets: list[list[torch.nn.Parameter]] = []
        for p in reversed([p for p in params if p.requires_grad]):
            if not self.buckets or sum(q.numel() for q in self.buckets[-1]) >= bucket_numel:
                self.buckets.append([])
            self.buckets[-1].append(p)
        self.bucket_of = {id(p): b for b, bucket in enumerate(self.buckets) for p in bucket}
        self.pending = [len(bucket) for bucket in self.buckets]
        self.works: dict[int, tuple[Any, torch.Tensor]] = {}
        for bucket in self.buckets:
            for p in bucket:
                p.register_post_accumulate_grad_hook(self._ready)

    def _ready(self, p: torch.Tensor) -> None:
        b = self.bucket_of[id(p)]
        self.pending[b] -= 1
        if self.pending[b] == 0:
            self._start(b)

    def _start(self, b: int) -> None:
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.buckets[b]]
        flat = torch.cat([g.reshape(-1) for g in grads])
        self.works[b] = (dist.all_reduce(flat, group=self.group, async_op=True), flat)

    def finish(self) -> None:
        """Wait for every bucket's sum and write it into ``.grad`` (collective: every worker calls it)."""
        for b in range(len(self.buckets)):
            if b not in self.works:
                self._start(b)
        for b, bucket in enumerate(self.buckets):
            work, flat = self.works[b]
            work.wait()
            self.on_reduce(flat)
            offset = 0
            for p in bucket:
                chunk = flat[offset : offset + p.numel()].view_as(p)
                if p.grad is None:
                    p.grad = chunk.clone()
                else:
                    p.grad.copy_(chunk)
                offset += p.numel()
        self.works.clear()
        self.pending = [len(bucket) for bucket in self.buckets]
