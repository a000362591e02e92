"""Exact cosine scoring of queries against an :class:`storage.vector_index.EmbeddingIndex`.

All rows are L2-normalised, so cosine similarity is one matrix product ``queries @ matrix.T``, done by torch on the
index's device: a GPU when present (the matrix is uploaded once and only new rows follow it), else the CPU, where
torch runs the ``float16`` product on both cores without copying the index. Selection of the best rows happens on
the same device, so only ``m`` scores come back. Optionally FAISS (``pip install faiss-cpu``) serves very large
galleries with an inverted-file index (approximate, see :class:`FaissScorer`).
"""

from __future__ import annotations

import warnings
from typing import Optional, Protocol

import numpy as np
import torch

from reid_app.errors import UsageError
from storage.vector_index import EmbeddingIndex


def copy_rows(dst: np.ndarray, src: np.ndarray) -> None:
    """Copy ``src`` into ``dst`` converting the dtype, with torch (about 17x faster than numpy for float32 to
    float16 on the 2-core CPU measured); for :class:`storage.vector_index.EmbeddingIndex` loading."""
    with warnings.catch_warnings():  # src may be a read-only view of database bytes; it is only read
        warnings.simplefilter("ignore", UserWarning)
        torch.from_numpy(dst).copy_(torch.from_numpy(src))


class Scorer(Protocol):
    """Finds the rows of an index most similar to a set of query vectors."""

    def top(self, index: EmbeddingIndex, queries: np.ndarray, valid: Optional[np.ndarray], m: int
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

    def top_tracks(self, index: EmbeddingIndex, queries: np.ndarray, valid: np.ndarray, m: int
                   ) -> tuple[np.ndarray, np.ndarray]:
        """The ``m`` tracks whose best valid row scores highest (max over queries and rows).

        Returns:
            ``(track ids int64 [m'], scores float32 [m'])``, best first.
        """


def top_tracks_by_rows(scorer, index: EmbeddingIndex, queries: np.ndarray, valid: np.ndarray, m: int
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
        if self.device.type == "cpu":
            return torch.from_numpy(index.matrix)
        generation, size, tensor = self._uploaded.get(index.model_id, (-1, 0, None))
        if generation != index.generation or tensor is None:
            tensor = torch.from_numpy(index.matrix).to(self.device)
        elif size < index.size:
            tensor = torch.cat([tensor, torch.from_numpy(index.matrix[size:]).to(self.device)])
        self._uploaded[index.model_id] = (index.generation, index.size, tensor)
        return tensor

    def _segments(self, index: EmbeddingIndex) -> torch.Tensor:
        key = -1 - index.model_id  # cached beside the matrices, invalidated the same way
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


class FaissScorer:
    """FAISS inverted-file scoring for very large galleries (optional: needs ``faiss-cpu`` or ``faiss-gpu``).

    An ``IndexIVFFlat`` with ``nlist = 4 sqrt(N)`` cells (k-means on up to 100k rows) is searched in ``nprobe``
    cells: approximate, trading recall for time. The FAISS index is rebuilt when the embedding index changed.

    Raises:
        UsageError: faiss is not installed.
    """

    def __init__(self, nprobe: int = 32):
        try:
            import faiss
        except ImportError:
            raise UsageError("the FAISS index needs the faiss package: pip install faiss-cpu "
                             "(or use the exact torch index)") from None
        self._faiss = faiss
        self.nprobe = nprobe
        self._built: dict[int, tuple[int, int, object]] = {}
        self._exact = TorchScorer("cpu")

    name = "faiss-ivf"

    def _index(self, index: EmbeddingIndex):
        faiss = self._faiss
        generation, size, built = self._built.get(index.model_id, (-1, 0, None))
        if built is None or generation != index.generation or size != index.size:
            data = np.ascontiguousarray(index.matrix, np.float32)
            nlist = max(1, min(int(4 * np.sqrt(len(data))), len(data) // 39))
            quantizer = faiss.IndexFlatIP(index.dims)
            built = faiss.IndexIVFFlat(quantizer, index.dims, nlist, faiss.METRIC_INNER_PRODUCT)
            sample = data if len(data) <= 100_000 else data[np.random.default_rng(0).choice(len(data), 100_000,
                                                                                            replace=False)]
            built.train(sample)
            built.add(data)
            self._built[index.model_id] = (index.generation, index.size, built)
        built.nprobe = self.nprobe
        return built

    def top(self, index, queries, valid, m):
        if index.size == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        built = self._index(index)
        want = m
        while True:
            k = min(index.size, want)
            scores, rows = built.search(np.ascontiguousarray(queries, np.float32), k)
            rows, scores = rows.ravel(), scores.ravel()
            ok = rows >= 0
            if valid is not None:
                ok &= valid[np.where(ok, rows, 0)]
            rows, scores = rows[ok], scores[ok]
            order = np.argsort(-scores, kind="stable")
            rows, scores = rows[order], scores[order]
            _, first = np.unique(rows, return_index=True)
            keep = np.sort(first)
            rows, scores = rows[keep], scores[keep]
            if len(rows) >= m or k >= index.size:
                return rows[:m].astype(np.int64), scores[:m].astype(np.float32)
            want *= 4

    def scores(self, index, queries, rows):
        return self._exact.scores(index, queries, rows)

    def top_tracks(self, index, queries, valid, m):
        return top_tracks_by_rows(self, index, queries, valid, m)


def make_scorer(kind: str = "auto", device: str = "cpu") -> Scorer:
    """The scorer for ``--index``: ``exact`` (torch on ``device``), ``faiss``, or ``auto`` (= exact).

    Raises:
        UsageError: unknown kind, or faiss missing.
    """
    if kind in ("auto", "exact"):
        return TorchScorer(device)
    if kind == "faiss":
        return FaissScorer()
    raise UsageError(f"unknown index '{kind}'; use exact or faiss")
