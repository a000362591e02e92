"""Cosine scoring of queries against a vector set: an :class:`storage.vector_index.EmbeddingIndex` (sightings) or
its :class:`storage.vector_index.TrackVectors` (track descriptors).

All rows are L2-normalised, so cosine similarity is one matrix product ``queries @ matrix.T``, done by torch on the
index's device: a GPU when present (the matrix is uploaded once and only new rows follow it), else the CPU, where
torch runs the ``float16`` product on both cores without copying the index. Selection of the best rows happens on
the same device, so only ``m`` scores come back (:class:`TorchScorer`). On a CPU, sets too large to scan within a
search's time are searched approximately (:class:`AnnScorer`: FAISS IVF-PQ proposes candidates, which are then
scored exactly).
"""

from __future__ import annotations

import warnings
from typing import Optional, Protocol

import numpy as np
import torch

from common.errors import UsageError
from pipelines.matching.ann import IvfPqIndex, candidates_for
from storage.vector_index import EmbeddingIndex


def copy_rows(dst: np.ndarray, src: np.ndarray) -> None:
    """Copy ``src`` into ``dst`` converting the dtype, with torch (about 17x faster than numpy for float32 to
    float16 on the 2-core CPU measured); for :class:`storage.vector_index.EmbeddingIndex` loading."""
    with warnings.catch_warnings():  # src may be a read-only view of database bytes; it is only read
        warnings.simplefilter("ignore", UserWarning)
        torch.from_numpy(dst).copy_(torch.from_numpy(src))


class Scorer(Protocol):
    """Finds the rows of an index most similar to a set of query vectors."""

    def top(
        self, index: EmbeddingIndex, queries: np.ndarray, valid: Optional[np.ndarray], m: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``m`` best rows by max-over-queries cosine similarity.

        Args:
            queries: ``float32 [Q, D]``, rows L2-normalised; a row's score is its best similarity to any query.
            valid: ``bool [N]`` rows that may be returned, or None for all.
            m: rows wanted (fewer come back when fewer are valid).

        Returns:
            ``(rows int64 [m'], scores float32 [m'])``, best first.
        """

    def scores(self, index: EmbeddingIndex, queries: np.ndarray, rows: slice) -> np.ndarray:
        """``float32 [R]`` max-over-queries similarity of the rows in ``rows`` (a track's rows)."""

    def top_tracks(
        self, index: EmbeddingIndex, queries: np.ndarray, valid: np.ndarray, m: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``m`` tracks whose best valid row scores highest (max over queries and rows).

        Returns:
            ``(track ids int64 [m'], scores float32 [m'])``, best first.
        """


def top_tracks_by_rows(
    scorer, index: EmbeddingIndex, queries: np.ndarray, valid: np.ndarray, m: int
) -> tuple[np.ndarray, np.ndarray]:
    """:meth:`Scorer.top_tracks` for any scorer with :meth:`Scorer.top`: asks for more rows until ``m`` distinct
    tracks are among them (exact: a track's best row comes before all its other rows)."""
    rows_wanted = max(64, 8 * m)
    while True:
        rows, scores = scorer.top(index, queries, valid, rows_wanted)
        _, first = np.unique(index.track_ids[rows], return_index=True)
        order = np.sort(first)
        if len(order) >= m or len(rows) < rows_wanted:
            order = order[:m]
            return index.track_ids[rows[order]], scores[order]
        rows_wanted *= 4


class TorchScorer:
    """Exact scoring with torch on ``device`` (``cpu``, ``cuda``, ``cuda:N``)."""

    def __init__(self, device: str = "cpu"):
        self.device = torch.device(device)
        self._uploaded: dict[int, tuple[int, int, torch.Tensor]] = {}  # model -> (generation, size, tensor)

    @property
    def name(self) -> str:
        return f"torch-{self.device}"

    def _matrix(self, index: EmbeddingIndex) -> torch.Tensor:
        """The set's rows as a tensor: the array itself on a CPU (a float16 product is no faster there than a
        float32 one); on a GPU a copy, extended as rows are appended and made again when rows are removed."""
        if self.device.type == "cpu":
            return torch.from_numpy(np.asarray(index.matrix))
        generation, size, tensor = self._uploaded.get(index.key, (-1, 0, None))
        if generation != index.generation or tensor is None or size > index.size:
            tensor = torch.from_numpy(np.asarray(index.matrix)).to(self.device)
        elif size < index.size:
            tensor = torch.cat([tensor, torch.from_numpy(np.asarray(index.matrix[size:])).to(self.device)])
        self._uploaded[index.key] = (index.generation, index.size, tensor)
        return tensor

    def _segments(self, index: EmbeddingIndex) -> torch.Tensor:
        key = f"segments-{index.key}"  # cached beside the matrices, invalidated the same way
        generation, size, tensor = self._uploaded.get(key, (-1, 0, None))
        if tensor is None or generation != index.generation or size != index.size:
            tensor = torch.from_numpy(index.row_segments).to(self.device)
            self._uploaded[key] = (index.generation, index.size, tensor)
        return tensor

    def _similarity(self, matrix: torch.Tensor, queries: np.ndarray) -> torch.Tensor:
        q = torch.from_numpy(np.ascontiguousarray(queries, np.float32)).to(self.device, matrix.dtype)
        if q.shape[0] == 1:
            return torch.mv(matrix, q[0]).float()
        return (matrix @ q.T).amax(dim=1).float()

    def top(self, index, queries, valid, m):
        if index.size == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        with torch.inference_mode():
            sims = self._similarity(self._matrix(index), queries)
            if valid is not None:
                sims.masked_fill_(~torch.from_numpy(valid).to(self.device), float("-inf"))
                m = min(m, int(valid.sum()))
            m = min(m, index.size)
            values, rows = torch.topk(sims, m)
        return rows.cpu().numpy().astype(np.int64), values.cpu().numpy().astype(np.float32)

    def scores(self, index, queries, rows):
        """On a CPU in numpy float32 (a track's few rows: torch's float16 product costs milliseconds to set up)."""
        if self.device.type == "cpu":
            q = np.ascontiguousarray(queries, np.float32)
            return (np.asarray(index.matrix[rows], np.float32) @ q.T).max(axis=1)
        with torch.inference_mode():
            return self._similarity(self._matrix(index)[rows], queries).cpu().numpy()

    def top_tracks(self, index, queries, valid, m):
        """One matrix product, then the per-track maximum on the device (``scatter_reduce`` over the rows)."""
        if index.size == 0 or len(index.segment_starts) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        with torch.inference_mode():
            sims = self._similarity(self._matrix(index), queries)
            sims.masked_fill_(~torch.from_numpy(valid).to(self.device), float("-inf"))
            best = torch.full((len(index.segment_starts),), float("-inf"), device=self.device)
            best.scatter_reduce_(0, self._segments(index), sims, reduce="amax")
            values, segments = torch.topk(best, min(m, len(best)))
            keep = torch.isfinite(values)
            values, segments = values[keep].cpu().numpy(), segments[keep].cpu().numpy()
        return index.segment_tracks[segments], values.astype(np.float32)


#: Vector sets up to this many bytes are scanned exactly on a CPU (a 1 GB float16 scan takes about 60 ms on
#: 2 cores); larger ones are searched approximately. On a GPU every set is scanned exactly.
EXACT_BYTES = 1 << 30


class AnnScorer:
    """Exact scoring (:class:`TorchScorer`) where it is fast, approximate beyond: on a CPU, a vector set larger
    than ``exact_bytes`` is searched with FAISS IVF-PQ (``pipelines.matching.ann``), whose ``candidates`` best ids per
    query
    are then scored exactly, so scores are always exact cosines and only the choice of candidates is approximate.
    ``nprobe`` and ``candidates`` None: chosen by the set's size (``pipelines.matching.ann.probes_for``,
    ``candidates_for``).
    A search whose filters leave few rows (at most ``exact_bytes`` of them) scans those rows exactly. The
    approximate index is loaded from, and saved into, the vector set's folder.

    Raises:
        UsageError: faiss is not installed (when a set first needs it).
    """

    def __init__(
        self,
        device: str = "cpu",
        exact_bytes: int = EXACT_BYTES,
        nprobe: Optional[int] = None,
        candidates: Optional[int] = None,
    ):
        self.exact = TorchScorer(device)
        self.exact_bytes, self.nprobe, self.candidates = exact_bytes, nprobe, candidates
        self._ann: dict[str, tuple[int, int, int, IvfPqIndex]] = {}  # key -> (videos, generation, size, index)
        self._ids: dict[str, tuple[int, int, np.ndarray, np.ndarray]] = {}  # key -> (generation, size, order, ids)

    @property
    def name(self) -> str:
        return f"auto-{self.exact.device}"

    def approximate_index(self, vectors) -> Optional[IvfPqIndex]:
        """The set's IVF-PQ index in step with it (loaded, or built on first use), or None when the set is
        scanned exactly."""
        if self.exact.device.type != "cpu" or vectors.matrix.nbytes <= self.exact_bytes:
            return None
        state = (len(vectors.videos), vectors.generation, vectors.size)
        cached = self._ann.get(vectors.key)
        if cached is None:
            ann = IvfPqIndex.load(vectors) or IvfPqIndex.build(vectors)
        else:
            ann = cached[3]
            if cached[:3] != state:
                ann.sync(vectors)
        self._ann[vectors.key] = (*state, ann)
        return ann

    def _rows_of_ids(self, vectors, ids: np.ndarray) -> np.ndarray:
        """Rows of ``ids`` (ids the set no longer holds are dropped)."""
        generation, size, order, sorted_ids = self._ids.get(vectors.key, (-1, 0, None, None))
        if generation != vectors.generation or size != vectors.size:
            if generation == vectors.generation and size < vectors.size:  # appended: merge the new rows in
                order = np.concatenate([order, np.arange(size, vectors.size)])
                order = order[np.argsort(vectors.ids[order], kind="stable")]
            else:
                order = np.argsort(vectors.ids, kind="stable")
            sorted_ids = vectors.ids[order]
            self._ids[vectors.key] = (vectors.generation, vectors.size, order, sorted_ids)
        at = np.minimum(np.searchsorted(sorted_ids, ids), max(len(sorted_ids) - 1, 0))
        found = sorted_ids[at] == ids if len(sorted_ids) else np.zeros(len(ids), bool)
        return order[at[found]]

    def top(self, index, queries, valid, m):
        ann = self.approximate_index(index) if index.size else None
        if ann is None:
            return self.exact.top(index, queries, valid, m)
        row_bytes = index.matrix.itemsize * index.matrix.shape[1]
        if valid is not None and int(valid.sum()) * row_bytes <= self.exact_bytes:
            rows = np.flatnonzero(valid)
            return self._best_of(index, queries, rows, m)
        allowed = None
        if valid is not None and not valid.all():
            allowed = np.zeros(int(index.ids.max()) + 1, bool)
            allowed[index.ids[valid]] = True
        wanted = max(self.candidates or candidates_for(index.size), 4 * m)
        found = ann.candidates(queries, wanted, allowed, self.nprobe).ids
        rows = self._rows_of_ids(index, np.unique(found[found >= 0]))
        if valid is not None:
            rows = rows[valid[rows]]
        return self._best_of(index, queries, rows, m)

    def _best_of(self, index, queries, rows: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``m`` best of ``rows`` by float32 cosine (candidates are few; a float16 product would reorder
        near-ties)."""
        if len(rows) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        q = np.ascontiguousarray(queries, np.float32)
        scores = np.concatenate(
            [
                (np.asarray(index.matrix[rows[i : i + 65536]], np.float32) @ q.T).max(axis=1)
                for i in range(0, len(rows), 65536)
            ]
        )
        best = np.argsort(-scores, kind="stable")[:m]
        return rows[best].astype(np.int64), scores[best].astype(np.float32)

    def scores(self, index, queries, rows):
        return self.exact.scores(index, queries, rows)

    def top_tracks(self, index, queries, valid, m):
        if self.approximate_index(index) is None:
            return self.exact.top_tracks(index, queries, valid, m)
        return top_tracks_by_rows(self, index, queries, valid, m)


def make_scorer(kind: str = "auto", device: str = "cpu") -> Scorer:
    """The scorer for ``--index``: ``auto`` (exact where fast, approximate IVF-PQ for sets over
    :data:`EXACT_BYTES` on a CPU), ``exact`` (always a full scan, torch on ``device``) or ``ann`` (approximate
    for every set of more than 20,000 rows; ``faiss`` is the same).

    Raises:
        UsageError: unknown kind.
    """
    if kind == "auto":
        return AnnScorer(device)
    if kind == "exact":
        return TorchScorer(device)
    if kind in ("ann", "faiss"):
        return AnnScorer(device, exact_bytes=20_000 * 2048)
    raise UsageError(f"unknown index '{kind}'; use auto, exact or ann")
