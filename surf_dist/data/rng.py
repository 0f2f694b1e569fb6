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
import operator

import numpy as np
import torch

__all__ = ["keyed_seed", "numpy_rng", "torch_generator"]

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
