"""Constrained average-linkage clustering that scales: a sparse k-nearest-neighbour graph, a heap of candidate
merges and one disjoint set, instead of dense ``T x T`` matrices (``tests/reference_clustering.py``).

Algorithm (average linkage, as in ``pipelines.matching.identities``; graph-based agglomeration after Sibson's and the
"sparse average linkage" of Loewenstein et al., 2008):

1. Each track's ``k`` most similar tracks (cosine of descriptors) whose similarity is at least ``min_edge`` are its
   graph edges; a pair that is in neither's neighbour list counts as similarity 0 in the averages (an
   underestimate: the sparse result merges at most what the dense one merges).
2. Confirmed pairs (must-link) start in one cluster (a disjoint set).
3. Every pair of clusters joined by an edge is a candidate with linkage ``sum of edge similarities / (|A| |B|)``,
   kept in a max-heap. The best candidate is popped; stale entries (a cluster changed since) are skipped. The two
   clusters merge when their linkage is at least ``threshold`` and no pair of their members is cannot-linked
   (checked on the members when popped: simultaneous in one camera, simultaneous in two cameras not marked
   overlapping, or rejected by a user); a forbidden pair is remembered and never tried again. A merge adds the
   smaller cluster's edge sums into the larger's and pushes the merged cluster's candidates.

Cost: ``O(T k)`` memory; ``O(T k log(T k))`` heap work plus the member checks of the popped candidates. The
neighbour search is exact (blocked matrix products) up to :data:`EXACT_KNN_LIMIT` tracks and approximate beyond
(FAISS inverted lists, when installed).
"""

from __future__ import annotations

import heapq
from typing import Optional, Sequence

import numpy as np
from scipy.cluster.hierarchy import DisjointSet

from pipelines.matching.constraints import cohesion, seen_apart, standing_alone

#: Up to this many tracks the neighbour search is exact.
EXACT_KNN_LIMIT = 50_000


def knn_graph(descriptors: np.ndarray, k: int, min_edge: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` most similar other rows of every row of ``float32 [T, D]`` L2-normalised ``descriptors``.

    Returns:
        ``(rows, cols, sims)``: ``int64 [E]``, ``int64 [E]``, ``float32 [E]``, each undirected pair once
        (``rows < cols``), similarity at least ``min_edge``.
    """
    n = len(descriptors)
    k = min(k, n - 1)
    if k <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    x = np.ascontiguousarray(descriptors, np.float32)
    if n > EXACT_KNN_LIMIT:
        neighbours, sims = _faiss_knn(x, k + 1)
    else:
        neighbours = np.empty((n, k + 1), np.int64)
        sims = np.empty((n, k + 1), np.float32)
        for start in range(0, n, 2048):
            block = x[start : start + 2048] @ x.T
            top = np.argpartition(-block, k, axis=1)[:, : k + 1]
            neighbours[start : start + 2048] = top
            sims[start : start + 2048] = np.take_along_axis(block, top, axis=1)
    rows = np.repeat(np.arange(n, dtype=np.int64), neighbours.shape[1])
    cols, values = neighbours.ravel(), sims.ravel()
    keep = (cols >= 0) & (cols != rows) & (values >= min_edge)
    a, b = np.minimum(rows[keep], cols[keep]), np.maximum(rows[keep], cols[keep])
    pairs, first = np.unique(a * n + b, return_index=True)
    return pairs // n, pairs % n, values[keep][first].astype(np.float32)


def _faiss_knn(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Approximate ``k`` nearest rows by inner product (FAISS IVF-Flat, 16 of ``4 sqrt(N)`` cells probed).

    The indexed rows are centred (their mean taken off): re-id descriptors share a large common component, which
    makes k-means cells very unequal, so a probe scanned far more than its share (100k tracks: 157 s, against
    about 7x less centred). A query's ranking is unchanged, since ``q . (x - m) = q . x - q . m`` shifts every
    score of one query alike; the shift is added back to the similarities returned."""
    import faiss

    n, dims = x.shape
    lists = int(4 * np.sqrt(n))
    mean = x.mean(axis=0)
    centred = np.ascontiguousarray(x - mean, np.float32)
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dims), dims, lists, faiss.METRIC_INNER_PRODUCT)
    index.train(centred[np.random.default_rng(0).choice(n, min(n, 50 * lists), replace=False)])
    index.add(centred)
    index.nprobe = 16
    sims, neighbours = index.search(x, k)
    sims += (x @ mean)[:, None]
    return neighbours.astype(np.int64), sims


class _Clusters:
    """A disjoint set over tracks (``scipy.cluster.hierarchy.DisjointSet``) with, per root, its members and its
    edge sums to other roots."""

    def __init__(self, n: int):
        self.sets = DisjointSet(range(n))
        self.members: dict[int, list[int]] = {i: [i] for i in range(n)}
        self.edges: dict[int, dict[int, float]] = {i: {} for i in range(n)}
        self.version = np.zeros(n, np.int64)
        self.blocked: dict[int, set[int]] = {}

    def find(self, i: int) -> int:
        return int(self.sets[i])

    def merge(self, a: int, b: int) -> int:
        """Merge roots ``a`` and ``b``; returns the surviving root (the disjoint set's choice)."""
        self.sets.merge(a, b)
        if self.sets[a] != a:
            a, b = b, a
        self.members[a] += self.members.pop(b)
        edges_a, edges_b = self.edges[a], self.edges.pop(b)
        edges_a.pop(b, None)
        for other, total in edges_b.items():
            if other == a:
                continue
            edges_a[other] = edges_a.get(other, 0.0) + total
            edges_other = self.edges[other]
            edges_other[a] = edges_other.get(a, 0.0) + edges_other.pop(b)
        blocked = self.blocked.pop(b, set())
        if blocked or a in self.blocked:
            mine = self.blocked.setdefault(a, set())
            mine |= blocked
            for other in blocked:
                self.blocked[other].discard(b)
                self.blocked[other].add(a)
        self.version[a] += 1
        self.version[b] += 1
        return a


def cluster_sparse(
    descriptors: np.ndarray,
    first: np.ndarray,
    last: np.ndarray,
    cameras: np.ndarray,
    overlaps: set[tuple[int, int]],
    threshold: float,
    must_link: Sequence[tuple[int, int]] = (),
    rejected: Sequence[tuple[int, int]] = (),
    k: int = 30,
    min_edge: Optional[float] = None,
) -> list[tuple[list[int], float]]:
    """Constrained average-linkage clusters of tracks (module docstring).

    Args:
        descriptors: ``float32 [T, D]`` L2-normalised track descriptors.
        first, last: ``float64 [T]`` wall-clock time ranges (seconds since the epoch), inclusive.
        cameras: ``int64 [T]`` camera ids.
        overlaps: camera id pairs ``(a, b)``, ``a < b``, marked as overlapping.
        threshold: the lowest average linkage that still merges (cosine).
        must_link: index pairs a user confirmed (one cluster; a confirmation overrides the automatic constraints).
        rejected: index pairs a user rejected (never in one cluster).
        k: neighbours per track in the graph.
        min_edge: edges below this similarity are left out (default: ``threshold - 0.3``).

    Returns:
        ``(member indices, confidence)`` per cluster, largest first; confidence as in
        ``pipelines.matching.constraints`` (for a single track from its graph edges).
    """
    n = len(descriptors)
    if n == 0:
        return []
    rows, cols, sims = knn_graph(descriptors, k, threshold - 0.3 if min_edge is None else min_edge)
    clusters = _Clusters(n)
    confirmed = {(min(a, b), max(a, b)) for a, b in must_link}
    rejected_set = {(min(a, b), max(a, b)) for a, b in rejected}
    for a, b in confirmed:
        ra, rb = clusters.find(a), clusters.find(b)
        if ra != rb:
            clusters.merge(ra, rb)
    component = np.array([clusters.find(i) for i in range(n)], np.int64)  # confirmed groups
    for a, b, s in zip(rows.tolist(), cols.tolist(), sims.tolist()):
        ra, rb = clusters.find(a), clusters.find(b)
        if ra != rb:
            clusters.edges[ra][rb] = clusters.edges[ra].get(rb, 0.0) + s
            clusters.edges[rb][ra] = clusters.edges[rb].get(ra, 0.0) + s

    def forbidden(a: int, b: int) -> bool:
        ma, mb = np.array(clusters.members[a]), np.array(clusters.members[b])
        clash = seen_apart(first[ma], last[ma], cameras[ma], first[mb], last[mb], cameras[mb], overlaps)
        # a confirmation overrides the automatic constraints between the tracks it joined
        if (clash & (component[ma][:, None] != component[mb][None, :])).any():
            return True
        if rejected_set:
            sa, sb = set(ma.tolist()), set(mb.tolist())
            return any((i in sa and j in sb) or (i in sb and j in sa) for i, j in rejected_set)
        return False

    heap: list[tuple[float, int, int, int, int]] = []

    def push(a: int) -> None:
        size_a = len(clusters.members[a])
        for b, total in clusters.edges[a].items():
            if b in clusters.blocked.get(a, ()):
                continue
            linkage = total / (size_a * len(clusters.members[b]))
            if linkage >= threshold:
                heapq.heappush(heap, (-linkage, a, b, int(clusters.version[a]), int(clusters.version[b])))

    for root in list(clusters.members):
        push(root)
    while heap:
        _, a, b, va, vb = heapq.heappop(heap)
        if (
            a not in clusters.members
            or b not in clusters.members
            or clusters.version[a] != va
            or clusters.version[b] != vb
            or b in clusters.blocked.get(a, ())
        ):
            continue
        if forbidden(a, b):
            clusters.blocked.setdefault(a, set()).add(b)
            clusters.blocked.setdefault(b, set()).add(a)
            continue
        push(clusters.merge(a, b))
    return _with_confidence(clusters, descriptors, rows, cols, sims, confirmed)


def _with_confidence(clusters: _Clusters, descriptors, rows, cols, sims, confirmed) -> list[tuple[list[int], float]]:
    best = np.full(len(descriptors), -np.inf)
    np.maximum.at(best, rows, sims)
    np.maximum.at(best, cols, sims)
    out = []
    for members in clusters.members.values():
        members = sorted(members)
        if len(members) > 1:
            vectors = descriptors[members].astype(np.float64)
            pairs = np.zeros((len(members), len(members)), bool)
            for a, b in confirmed:
                if a in members and b in members:
                    i, j = members.index(a), members.index(b)
                    pairs[i, j] = pairs[j, i] = True
            confidence = cohesion(vectors @ vectors.T, pairs)
        else:
            confidence = standing_alone(float(best[members[0]]))
        out.append((members, confidence))
    return sorted(out, key=lambda c: (-len(c[0]), c[0][0]))
