"""Keyed random generators: every random draw in surf-dist comes from ``(seed, *keys)``.

A draw's generator is a pure function of the run's seed and of *where* the draw happens (split,
task, step, layer, agent, ...), so workers that host different agents agree without talking and a
resumed run repeats the draws of a run that was never stopped.

Keys are ints or strings. Strings are hashed with SHA-256 (never Python's ``hash()``, which is
salted per process), ints are written out in full, and every key carries a type tag and a length,
so ``("a", 1)``, ``(1, "a")`` and ``("1",)`` all give different seeds.
"""

from __future__ import annotations

import hashlib
import math
import operator

import numpy as np
import torch

__all__ = ["hash_counters", "keyed_seed", "normal_rows", "numpy_rng", "torch_generator", "uniform_rows"]

_TAG_NONNEG_INT = 0
_TAG_NEG_INT = 1
_TAG_STR = 2
_MASK_63 = (1 << 63) - 1


def _int_words(value: int) -> list[int]:
    """Little-endian 32-bit words of a non-negative int (at least one word)."""
    words = []
    while True:
        words.append(value & 0xFFFFFFFF)
        value >>= 32
        if value == 0:
            return words


def _key_words(key: int | str) -> list[int]:
    """Encode one key as ``[tag, num_words, *words]``: unambiguous, so keys never collide by layout."""
    if isinstance(key, str):
        digest = hashlib.sha256(key.encode("utf-8")).digest()
        words = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, len(digest), 4)]
        return [_TAG_STR, len(words), *words]
    try:
        value = operator.index(key)  # ints, numpy ints, bools; not floats
    except TypeError:
        raise TypeError(f"a random key must be an int or a str, got {type(key).__name__}: {key!r}") from None
    if value >= 0:
        words = _int_words(value)
        return [_TAG_NONNEG_INT, len(words), *words]
    words = _int_words(-value)
    return [_TAG_NEG_INT, len(words), *words]


def keyed_seed(seed: int, *keys: int | str) -> int:
    """A stable 63-bit seed for the draw at position ``keys`` of a run seeded with ``seed``.

    Built with ``numpy.random.SeedSequence`` over an unambiguous encoding of ``(seed, *keys)``;
    identical in every process, on every machine and across Python sessions.
    """
    words: list[int] = []
    for key in (seed, *keys):
        words.extend(_key_words(key))
    entropy = np.asarray(words, dtype=np.uint32)
    state = np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)
    return int(state[0]) & _MASK_63


def numpy_rng(seed: int, *keys: int | str) -> np.random.Generator:
    """A NumPy PCG64 generator seeded with :func:`keyed_seed` ``(seed, *keys)``."""
    return np.random.Generator(np.random.PCG64(keyed_seed(seed, *keys)))


def torch_generator(seed: int, *keys: int | str) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with :func:`keyed_seed` ``(seed, *keys)``."""
    generator = torch.Generator(device="cpu")
    generator.manual_seed(keyed_seed(seed, *keys))
    return generator


# -- counter-based draws: any subset of rows, the same numbers ---------------------------------------------------
# splitmix64's finaliser over a counter (Steele, Lea and Flood, 2014): z = key + (c + 1)·φ, then three rounds of
# xor-shift and multiply, in NumPy's uint64 (wrapping arithmetic, logical shifts). NumPy runs it on one thread:
# torch's parallel elementwise kernels lose far more to waiting threads on a busy machine than they gain.
_PHI, _M1, _M2 = (np.uint64(v) for v in (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB))
_CHUNK_ELEMENTS = 1 << 22  # rows are hashed in chunks of about this many values: bounded temporaries


def hash_counters(key: int, counters: np.ndarray) -> np.ndarray:
    """64 pseudo-random bits (uint64) per int64 counter, a pure function of (key, counter)."""
    z = counters.astype(np.uint64) + np.uint64(1)
    z *= _PHI
    z += np.uint64(key)
    for shift, multiplier in ((30, _M1), (27, _M2), (31, None)):
        z ^= z >> np.uint64(shift)
        if multiplier is not None:
            z *= multiplier
    return z


def uniform_rows(key: int, rows_A: torch.Tensor, num_cols: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A × num_cols uniforms in [0, 1) (resolution 2⁻³²): row a holds row ``rows_A[a]`` of one fixed, infinite
    table keyed by ``key``. Any worker drawing any subset of rows (e.g. the global ids of the agents it hosts)
    gets exactly the rows of the full draw, at cost O(A · num_cols). Two values per 64-bit hash (low half first)."""
    rows = np.asarray(torch.as_tensor(rows_A, dtype=torch.int64).cpu(), dtype=np.int64)
    num_hashes = (num_cols + 1) // 2  # per row
    out = np.empty((rows.shape[0], num_cols), dtype=np.float32 if dtype == torch.float32 else np.float64)
    step = max(1, _CHUNK_ELEMENTS // max(num_hashes, 1))
    columns = np.arange(num_hashes, dtype=np.int64)
    for start in range(0, rows.shape[0], step):
        z = hash_counters(key, rows[start : start + step, None] * num_hashes + columns)
        halves = np.stack([z & np.uint64(0xFFFFFFFF), z >> np.uint64(32)], axis=2).reshape(z.shape[0], -1)
        out[start : start + step] = halves[:, :num_cols].astype(np.float64) * 2.0**-32
    return torch.from_numpy(out).to(dtype)


def normal_rows(key: int, rows_A: torch.Tensor, num_cols: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A × num_cols standard normals, by rows of a table keyed by ``key`` as ``uniform_rows``: Box–Muller on the
    two 32-bit halves of one hash, r·cos θ with r = √(−2 ln(1 − u₁)), θ = 2π u₂ (tails cut at 6.7σ)."""
    u = uniform_rows(key, rows_A, 2 * num_cols).view(-1, num_cols, 2)
    radius = torch.sqrt(-2.0 * torch.log1p(-(u[..., 0] + 2.0**-33)))
    return (radius * torch.cos(2.0 * math.pi * u[..., 1])).to(dtype)
