"""Split a labelled pool over agents: pure functions from a label array to index arrays.

Shape legend:
    N  samples in the pool (labels_N)
    A  agents
    S  samples per agent
    C  classes present in the pool

Every agent gets exactly S samples, drawn *without replacement within the agent*. Agents are drawn
independently of each other, so two agents may hold the same sample when the pool is small. That
is deliberate: it is what lets 100 agents x 60 samples live on the 1,198-image digits train split,
where a disjoint partition (fedlab's ``CIFAR10Partitioner``, used by the fed-SURF code) is
impossible. On CIFAR-10 (50,000 images, 6,000 draws) about one draw in twenty is shared.

Methods:
    iid        each agent: S samples uniformly from the whole pool.
    dirichlet  each agent: class shares q_i ~ Dir(alpha·1_C), counts n_i ~ Multinomial(S, q_i),
               then n_ic samples of class c from that class's pool. Small alpha: few classes per
               agent; large alpha: close to the pool's class mix.
    shards     pathological non-IID: each agent draws ``shards_per_agent`` distinct classes and
               takes S / shards_per_agent samples of each (the remainder spread one by one).
An agent whose count for a class exceeds that class's pool is redrawn (at most ``max_retries``
times); after that the partition is impossible in practice and :class:`InputError` says what to
change. Each agent's row is returned in random order, so its first M samples (training) and its
last T (held out) are both draws from the agent's own class mix.

Cost: a few NumPy calls per task, vectorised over agents (Floyd's sampling without replacement runs
S steps, each over all (agent, class) pairs): about 2 ms for 100 agents x 60 samples.
"""

from __future__ import annotations

import numpy as np

from surf_dist.data.spec import PARTITIONS
from surf_dist.errors import InputError

__all__ = ["PARTITIONS", "partition"]


def partition(
    labels_N: np.ndarray,
    *,
    method: str,
    num_agents: int,
    samples_per_agent: int,
    rng: np.random.Generator,
    alpha: float = 0.7,
    shards_per_agent: int = 2,
    max_retries: int = 50,
) -> np.ndarray:
    """Draw ``samples_per_agent`` sample indices for each of ``num_agents`` agents.

    Args:
        labels_N: N non-negative integer class labels of the pool.
        method: one of :data:`PARTITIONS`.
        rng: the only source of randomness; the same generator state gives the same partition.
        alpha: Dirichlet concentration (``dirichlet`` only), > 0.
        shards_per_agent: classes per agent (``shards`` only), in [1, C].
        max_retries: redraws allowed per agent before giving up.

    Returns:
        A x S int64 indices into ``labels_N``; row i is agent i's samples, distinct within the row.

    Raises:
        InputError: bad method or sizes, or no valid draw within ``max_retries`` redraws.
    """
    labels_N = np.asarray(labels_N)
    problems = _check_arguments(labels_N, method, num_agents, samples_per_agent, alpha, shards_per_agent)
    if problems:
        raise InputError(problems)
    classes_C, class_N = np.unique(labels_N, return_inverse=True)
    num_classes = classes_C.shape[0]
    # Pool of each class: class c's sample indices are order_N[start_C[c] : start_C[c + 1]].
    order_N = np.argsort(class_N, kind="stable")
    pool_size_C = np.bincount(class_N, minlength=num_classes)
    start_C = np.concatenate([[0], np.cumsum(pool_size_C)])

    if method == "iid":  # one "class" holding the whole pool
        if samples_per_agent > labels_N.shape[0]:
            raise InputError(
                [
                    f"data: {samples_per_agent} samples per agent but the pool holds only "
                    f"{labels_N.shape[0]}; lower data.num_train + data.num_heldout or use a larger dataset"
                ]
            )
        counts_AC = np.full((num_agents, 1), samples_per_agent, dtype=np.int64)
        num_all = labels_N.shape[0]
        order_N, pool_size_C, start_C = np.arange(num_all), np.array([num_all]), np.array([0, num_all])
    else:
        counts_AC = _draw_counts(
            rng, method, num_agents, samples_per_agent, pool_size_C, alpha, shards_per_agent, max_retries
        )
    picks_AS = _sample_within_classes(rng, counts_AC, pool_size_C)
    class_AS = np.repeat(np.tile(np.arange(counts_AC.shape[1]), num_agents), counts_AC.ravel()).reshape(
        num_agents, samples_per_agent
    )
    index_AS = order_N[start_C[class_AS] + picks_AS].astype(np.int64)
    # Rows come out grouped by class; shuffle each so that any prefix (the train part) and suffix (the
    # held-out part) are both random draws from the agent's own class mix.
    return rng.permuted(index_AS, axis=1)


def _draw_counts(
    rng: np.random.Generator,
    method: str,
    num_agents: int,
    samples_per_agent: int,
    pool_size_C: np.ndarray,
    alpha: float,
    shards_per_agent: int,
    max_retries: int,
) -> np.ndarray:
    """A x C class counts, each row summing to S and within the class pools; bad rows redrawn."""
    num_classes = pool_size_C.shape[0]
    counts_AC = np.zeros((num_agents, num_classes), dtype=np.int64)
    redraw_R = np.arange(num_agents)
    for _attempt in range(max_retries + 1):
        if method == "dirichlet":
            counts_RC = _dirichlet_counts(rng, redraw_R.shape[0], num_classes, samples_per_agent, alpha)
        else:
            counts_RC = _shard_counts(rng, redraw_R.shape[0], num_classes, samples_per_agent, shards_per_agent)
        ok_R = np.all(counts_RC <= pool_size_C, axis=1)
        counts_AC[redraw_R[ok_R]] = counts_RC[ok_R]
        redraw_R = redraw_R[~ok_R]
        if redraw_R.shape[0] == 0:
            return counts_AC
    raise InputError([_impossible_message(method, int(redraw_R[0]), samples_per_agent, pool_size_C, max_retries)])


def _dirichlet_counts(
    rng: np.random.Generator, num_rows: int, num_classes: int, num_samples: int, alpha: float
) -> np.ndarray:
    """R x C counts: q_r ~ Dir(alpha·1_C), n_r ~ Multinomial(S, q_r). Degenerate q rows get count S + 1."""
    share_RC = rng.dirichlet(np.full(num_classes, alpha), size=num_rows)
    total_R = share_RC.sum(axis=1, keepdims=True)
    bad_R = ~np.all(np.isfinite(share_RC), axis=1) | (total_R[:, 0] <= 0)  # tiny alpha can underflow
    share_RC[bad_R] = 1.0 / num_classes
    counts_RC = rng.multinomial(num_samples, share_RC / np.where(bad_R[:, None], 1.0, total_R))
    counts_RC[bad_R, 0] = num_samples + 1  # over any pool: forces a redraw
    return counts_RC.astype(np.int64)


def _shard_counts(
    rng: np.random.Generator, num_rows: int, num_classes: int, num_samples: int, num_shards: int
) -> np.ndarray:
    """R x C counts: ``num_shards`` distinct classes per row, S split as evenly as possible."""
    chosen_RK = np.argsort(rng.random((num_rows, num_classes)), axis=1)[:, :num_shards]
    base, extra = divmod(num_samples, num_shards)
    share_K = np.full(num_shards, base, dtype=np.int64)
    share_K[:extra] += 1
    counts_RC = np.zeros((num_rows, num_classes), dtype=np.int64)
    np.put_along_axis(counts_RC, chosen_RK, np.broadcast_to(share_K, chosen_RK.shape), axis=1)
    return counts_RC


def _sample_within_classes(rng: np.random.Generator, counts_AC: np.ndarray, pool_size_C: np.ndarray) -> np.ndarray:
    """A x S positions inside the class pools: for every (agent, class) pair, counts_AC[a, c] distinct
    positions in [0, pool_size_C[c]), uniformly, laid out agent by agent and class by class.

    Floyd's algorithm (k draws for k of n without replacement), vectorised over all pairs: step s
    draws t in [0, n - k + s]; if t was already picked, n - k + s is taken instead.
    """
    num_agents = counts_AC.shape[0]
    agent_P, class_P = np.nonzero(counts_AC)  # agent-major, so pairs of one agent are contiguous
    k_P = counts_AC[agent_P, class_P]
    n_P = pool_size_C[class_P]
    max_k = int(k_P.max()) if k_P.size else 0
    picks_PK = np.zeros((k_P.shape[0], max_k), dtype=np.int64)
    for step in range(max_k):
        active = np.flatnonzero(k_P > step)
        top = n_P[active] - k_P[active] + step
        t = rng.integers(0, top + 1)
        taken = (picks_PK[active, :step] == t[:, None]).any(axis=1)
        picks_PK[active, step] = np.where(taken, top, t)
    valid_PK = np.arange(max_k)[None, :] < k_P[:, None]
    return picks_PK[valid_PK].reshape(num_agents, -1)


def _check_arguments(
    labels_N: np.ndarray,
    method: str,
    num_agents: int,
    samples_per_agent: int,
    alpha: float,
    shards_per_agent: int,
) -> list[str]:
    problems = []
    if method not in PARTITIONS:
        problems.append(f"data.partition: unknown method {method!r}; use one of {', '.join(PARTITIONS)}")
    if labels_N.ndim != 1 or labels_N.shape[0] == 0 or not np.issubdtype(labels_N.dtype, np.integer):
        problems.append(f"labels must be a non-empty 1-D integer array, got {labels_N.dtype} {labels_N.shape}")
    if num_agents < 1:
        problems.append(f"the number of agents must be >= 1, got {num_agents}; use a graph with agents")
    if samples_per_agent < 1:
        problems.append(
            f"data: samples per agent must be >= 1, got {samples_per_agent}; raise data.num_train/num_heldout"
        )
    if method == "dirichlet" and not alpha > 0:
        problems.append(f"data.alpha: must be > 0, got {alpha}; e.g. 0.7 (smaller = more skewed)")
    if method == "shards" and labels_N.ndim == 1 and labels_N.shape[0] > 0:
        num_classes = np.unique(labels_N).shape[0]
        if not 1 <= shards_per_agent <= num_classes:
            problems.append(
                f"data.shards_per_agent: must be in [1, {num_classes}] (classes in the pool), got {shards_per_agent}"
            )
    return problems


def _impossible_message(
    method: str, agent: int, samples_per_agent: int, pool_size_C: np.ndarray, max_retries: int
) -> str:
    fix = (
        "lower data.num_train + data.num_heldout, raise data.alpha (less skew) or use a larger dataset"
        if method == "dirichlet"
        else "lower data.num_train + data.num_heldout, raise data.shards_per_agent or use a larger dataset"
    )
    return (
        f"data.partition: {method} partition impossible in practice: agent {agent} drew a class count above "
        f"that class's pool (smallest class has {int(pool_size_C.min())} samples, each agent needs "
        f"{samples_per_agent}) on {max_retries + 1} draws in a row; {fix}"
    )
