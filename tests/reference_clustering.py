"""The dense reference implementation of constrained average-linkage clustering (``O(T^2)`` memory, ``O(T^2)``
per merge), written straight from the algorithm in ``pipelines.matching.identities``' module docstring: the sparse
clustering the product runs (``pipelines.matching.linkage.cluster_sparse``) is tested against it, and
``benchmarks/scale.py`` compares the two."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from pipelines.matching.constraints import cohesion, confirmed_groups, standing_alone


def cluster_tracks(
    similarity: np.ndarray, forbidden: np.ndarray, must_link: Sequence[tuple[int, int]], threshold: float
) -> list[tuple[list[int], float]]:
    """Constrained average-linkage clustering (module docstring, steps 1 and 3).

    Args:
        similarity: ``float [T, T]`` cosine similarities of the tracks.
        forbidden: ``bool [T, T]`` cannot-link pairs (automatic and rejected).
        must_link: index pairs that must share a cluster (confirmed).
        threshold: the lowest average linkage that still merges.

    Returns:
        ``(member indices, confidence)`` per cluster, largest first.
    """
    n = len(similarity)
    if n == 0:
        return []
    sim = similarity.astype(np.float64)
    confirmed = np.zeros((n, n), bool)
    union = confirmed_groups(must_link)
    for a, b in must_link:
        confirmed[a, b] = confirmed[b, a] = True
    for i in range(n):
        union.add(i)
    groups = sorted(sorted(g) for g in union.subsets())
    k = len(groups)
    membership = np.zeros((k, n))
    for c, g in enumerate(groups):
        membership[c, g] = 1.0
    sums = membership @ sim @ membership.T
    blocked = (membership @ forbidden.astype(np.float64) @ membership.T) > 0
    np.fill_diagonal(sums, 0.0)
    np.fill_diagonal(blocked, False)
    sizes = membership.sum(axis=1)
    alive = np.ones(k, bool)
    while True:
        linkage = sums / np.outer(sizes, sizes)
        usable = ~blocked & alive[:, None] & alive[None, :]
        np.fill_diagonal(usable, False)
        if not usable.any():
            break
        flat = np.where(usable, linkage, -np.inf)
        i, j = np.unravel_index(np.argmax(flat), flat.shape)
        if flat[i, j] < threshold:
            break
        groups[i] += groups[j]
        sums[i, :] += sums[j, :]
        sums[:, i] += sums[:, j]
        sums[i, i] = 0.0
        blocked[i, :] |= blocked[j, :]
        blocked[:, i] |= blocked[:, j]
        sizes[i] += sizes[j]
        alive[j] = False
    out = []
    for c in np.flatnonzero(alive):
        g = sorted(groups[c])
        if len(g) > 1:
            confidence = cohesion(sim[np.ix_(g, g)], confirmed[np.ix_(g, g)])
        else:
            others = np.where(forbidden[g[0]], -np.inf, sim[g[0]])
            others[g[0]] = -np.inf
            confidence = standing_alone(float(others.max()) if n > 1 else -np.inf)
        out.append((g, confidence))
    return sorted(out, key=lambda c: (-len(c[0]), c[0][0]))
