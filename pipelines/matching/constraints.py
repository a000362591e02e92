"""The rules every clustering of tracks into identities obeys, written once: when two tracks cannot be one person
(cannot-link), how sure an identity is (confidence), and the disjoint set that groups confirmed tracks.

Cannot-link (``pipelines.matching.identities``, module docstring step 2): two tracks cannot be one person when they
are seen at the same moment (their wall-clock time ranges overlap, ends included) on one camera, or on two cameras
not marked as overlapping; a user's rejection adds a pair, and a user's confirmation overrides the automatic rule
between the tracks it joins.

Confidence: for an identity of several tracks, the mean pairwise cosine similarity of its members (a confirmed pair
counts 1.0); for a single track, ``1 - max(0, s)`` where ``s`` is its highest similarity to a track it could have
joined (how clearly it stands alone), 1.0 when it could have joined none.

Used by the full clustering (``pipelines.matching.linkage.cluster_sparse``), the incremental assignment
(``pipelines.matching.identities.assign_new_tracks``) and feedback (``pipelines.matching.feedback``).
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
from scipy.cluster.hierarchy import DisjointSet


def seen_apart(
    first_a: np.ndarray,
    last_a: np.ndarray,
    cameras_a: np.ndarray,
    first_b: np.ndarray,
    last_b: np.ndarray,
    cameras_b: np.ndarray,
    overlaps: set[tuple[int, int]],
) -> np.ndarray:
    """Which pairs of tracks cannot be one person by the automatic rule (module docstring).

    Args:
        first_a, last_a: ``float64 [A]`` wall-clock time ranges of the first tracks (seconds since the epoch).
        cameras_a: ``int64 [A]`` their camera ids. first_b, last_b, cameras_b: the same for ``[B]`` other tracks.
        overlaps: camera id pairs ``(x, y)``, ``x < y``, marked as overlapping (one person may be in both at once).

    Returns:
        ``bool [A, B]``: True where the pair is seen at the same moment on one camera or on two cameras not
        marked overlapping (a track paired with itself is True too: callers clear their diagonal).
    """
    simultaneous = (first_a[:, None] <= last_b[None, :]) & (first_b[None, :] <= last_a[:, None])
    if not simultaneous.any():
        return simultaneous
    ca, cb = cameras_a[:, None], cameras_b[None, :]
    allowed = np.zeros_like(simultaneous)
    for x, y in overlaps:
        allowed |= ((ca == x) & (cb == y)) | ((ca == y) & (cb == x))
    return simultaneous & ~allowed


def cannot_link(tracks, overlaps: set[tuple[int, int]]) -> np.ndarray:
    """The automatic cannot-link pairs of all tracks (module docstring).

    Args:
        tracks: a ``storage.vector_index.TrackTable`` (camera ids and wall-clock time ranges of ``T`` tracks).
        overlaps: camera id pairs ``(a, b)``, ``a < b``, marked as overlapping.

    Returns:
        ``bool [T, T]``, symmetric, False on the diagonal.
    """
    first, last, cams = tracks.first_timestamps, tracks.last_timestamps, tracks.camera_ids
    forbidden = seen_apart(first, last, cams, first, last, cams, overlaps)
    np.fill_diagonal(forbidden, False)
    return forbidden


def cannot_link_row(tracks, i: int, overlaps: set[tuple[int, int]]) -> np.ndarray:
    """Row ``i`` of :func:`cannot_link` (``bool [T]``), in ``O(T)``."""
    first, last, cams = tracks.first_timestamps, tracks.last_timestamps, tracks.camera_ids
    row = seen_apart(first[i : i + 1], last[i : i + 1], cams[i : i + 1], first, last, cams, overlaps)[0]
    row[i] = False
    return row


def cohesion(similarities: np.ndarray, confirmed: np.ndarray | None = None) -> float:
    """The confidence of an identity of ``m >= 2`` tracks: the mean of the off-diagonal entries of their
    ``float [m, m]`` cosine ``similarities``, a ``confirmed`` (``bool [m, m]``) pair counting 1.0; clipped to
    ``[0, 1]``."""
    block = similarities.astype(np.float64)
    if confirmed is not None:
        block = np.where(confirmed, 1.0, block)
    m = len(block)
    return float(np.clip((block.sum() - np.trace(block)) / (m * (m - 1)), 0.0, 1.0))


def standing_alone(best_similarity: float) -> float:
    """The confidence of a one-track identity whose highest similarity to a track it could have joined is
    ``best_similarity`` (``-inf`` when it could have joined none): ``1 - max(0, s)`` in ``[0, 1]``."""
    if not np.isfinite(best_similarity):
        return 1.0
    return float(np.clip(1.0 - max(0.0, float(best_similarity)), 0.0, 1.0))


def confirmed_groups(pairs: Iterable[tuple[int, int]]) -> DisjointSet:
    """The tracks joined by confirmed pairs, as a disjoint set (``scipy.cluster.hierarchy.DisjointSet``: ``ds[x]``
    is the representative of ``x``'s group, ``ds.subsets()`` the groups)."""
    groups = DisjointSet()
    for a, b in pairs:
        groups.add(a)
        groups.add(b)
        groups.merge(a, b)
    return groups
