"""k-reciprocal re-ranking (Zhong, Zheng, Cao, Li, CVPR 2017, "Re-ranking Person Re-identification with k-reciprocal
Encoding").

Steps, over all probe + gallery items together, as the paper describes them:
    1. ``R(p, k)``: the k-reciprocal neighbours of p: items in p's k nearest neighbours that have p in theirs too.
    0. Each row of the original distance matrix is scaled by its own maximum (as the authors' reference code does).
    2. Expansion ``R*(p, k)``: add ``R(q, k/2)`` of each q in ``R(p, k)`` when it overlaps the original ``R(p, k)``
       (not the growing expansion) by more than 2/3 of its size (paper Eq. 8).
    3. Encoding ``V_p``: ``exp(-d(p, g))`` on ``R*(p, k1)``, 0 elsewhere, normalised to sum 1.
    4. Local query expansion: ``V_p`` replaced by the mean of the ``V`` of p's ``k2`` nearest neighbours.
    5. Jaccard distance ``d_J(p, g) = 1 - sum_j min(V_pj, V_gj) / sum_j max(V_pj, V_gj)``.
    6. Final distance ``d* = (1 - lambda) d_J + lambda d``; the paper uses k1=20, k2=6, lambda=0.3.
"""

from __future__ import annotations

import numpy as np


def _k_reciprocal(ranks: np.ndarray, index: int, k: int) -> np.ndarray:
    forward = ranks[index, : k + 1]
    backward = ranks[forward, : k + 1]
    return forward[np.any(backward == index, axis=1)]


def k_reciprocal_rerank(
    query_gallery: np.ndarray,
    query_query: np.ndarray,
    gallery_gallery: np.ndarray,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
) -> np.ndarray:
    """Re-ranked query-to-gallery distances.

    Args:
        query_gallery: ``float [Q, G]`` original distances (e.g. squared Euclidean or ``2 - 2 cos``).
        query_query: ``float [Q, Q]``.
        gallery_gallery: ``float [G, G]``.
        k1, k2, lambda_value: the paper's parameters (defaults: its Market-1501 setting).

    Returns:
        ``float32 [Q, G]`` final distances ``d*`` (smaller is more similar).

    Raises:
        ValueError: shapes do not agree or ``k1``/``k2`` below 1.
    """
    qg = np.asarray(query_gallery, np.float32)
    q, g = qg.shape
    if np.shape(query_query) != (q, q) or np.shape(gallery_gallery) != (g, g):
        raise ValueError(f"expected [Q,Q]=[{q},{q}] and [G,G]=[{g},{g}] distance matrices")
    if k1 < 1 or k2 < 1:
        raise ValueError("k1 and k2 must be at least 1")
    n = q + g
    full = np.block([[np.asarray(query_query, np.float32), qg], [qg.T, np.asarray(gallery_gallery, np.float32)]])
    full = np.maximum(full, 0.0)
    full = full / np.maximum(full.max(axis=1, keepdims=True), 1e-12)  # each row scaled by its own maximum
    k1 = min(k1, n - 1)
    k2 = min(k2, n)
    ranks = np.argsort(full, axis=1, kind="stable")
    v = np.zeros((n, n), np.float32)
    half = max(1, int(round(k1 / 2)))
    for p in range(n):
        reciprocal = _k_reciprocal(ranks, p, k1)
        expanded = reciprocal
        for candidate in reciprocal:
            neighbours = _k_reciprocal(ranks, candidate, half)
            if len(np.intersect1d(neighbours, reciprocal)) > 2.0 / 3.0 * len(neighbours):
                expanded = np.union1d(expanded, neighbours)
        expanded = np.unique(expanded)
        weights = np.exp(-full[p, expanded])
        v[p, expanded] = weights / weights.sum()
    if k2 > 1:
        v = np.stack([v[ranks[p, :k2]].mean(axis=0) for p in range(n)])
    jaccard = np.empty((q, g), np.float32)
    for p in range(q):
        support = np.flatnonzero(v[p])
        mins = np.minimum(v[p, support][None, :], v[q:, support]).sum(axis=1)
        jaccard[p] = 1.0 - mins / (2.0 - mins)  # sum of maxima = |V_p| + |V_g| - sum of minima = 2 - mins
    return ((1.0 - lambda_value) * jaccard + lambda_value * full[:q, q:]).astype(np.float32)
