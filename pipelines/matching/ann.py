"""Approximate nearest-neighbour search over a very large vector set: FAISS IVF-PQ, kept in step with the set and
saved beside it.

The index is an inverted file of ``nlist`` k-means cells whose centroids are found through an HNSW graph, with
each vector's residual compressed by product quantisation into ``M`` bytes (Jégou, Douze and Schmid, "Product
quantization for nearest neighbor search", TPAMI 2011, sections III–IV; the HNSW coarse quantiser of Malkov and
Yashunin, TPAMI 2018). A query scans the ``nprobe`` nearest cells and returns candidates, which the caller
re-scores exactly from the stored vectors (``pipelines.matching.similarity``), so the compression costs recall only
where
a true neighbour falls outside the candidates.

Vectors are added under their stable ids (sighting or track ids), so rows compacted away by a deletion are
removed by id and nothing else is re-encoded. The trained index is saved in the vector set's folder as
``ann-<key>.faiss`` with ``ann-<key>.json`` naming the videos it holds; a later process loads it and adds only
the videos ingested since.
"""

from __future__ import annotations

import json
import os
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Protocol

import numpy as np

from common.errors import UsageError

#: Probed cells per query, at least; more on smaller sets so that about :data:`SCANNED_CODES` codes are scanned
#: (``benchmarks/scale.py --index``: 48 cells gave recall@10 0.98 on 10M synthetic sightings; on 500k track
#: descriptors 48 cells gave 0.79 and 512 cells 0.91).
NPROBE = 48
#: Codes a query scans at least (cells of a small set hold few).
SCANNED_CODES = 60_000
#: Candidates re-scored exactly per query (at least; more when more results are wanted): more on sets of up to
#: :data:`MANY_CANDIDATES_ROWS` rows, whose rows are read from memory, fewer above, where they may come from disk.
CANDIDATES, MANY_CANDIDATES = 256, 1024
MANY_CANDIDATES_ROWS = 2_000_000
#: Vectors sampled per cell to train the cells and the quantiser (k-means cost grows with it).
TRAINING_PER_CELL = 32
#: Vectors added since the last save after which the index is saved again (fewer are added again at load).
SAVE_EVERY = 100_000


class VectorSet(Protocol):
    """Rows the approximate index covers: ``matrix [N, D]``, their stable ``ids int64 [N]``, each row's
    ``video_ids int64 [N]``, the set's ``videos`` (id -> ingest time), ``key`` (file names) and ``folder``."""

    matrix: np.ndarray
    ids: np.ndarray
    video_ids: np.ndarray
    videos: dict
    key: str
    folder: object


def _faiss():
    try:
        import faiss
    except ImportError:
        raise UsageError("approximate search needs the faiss package: pip install faiss-cpu") from None
    return faiss


def cells_for(rows: int) -> int:
    """``nlist`` for a set of ``rows`` vectors: about ``4 sqrt(N)``, a power of two between 64 and 4096 (more cells
    would make training, which runs k-means over them, the bulk of the build on a small CPU)."""
    return int(min(4096, max(64, 2 ** round(np.log2(4 * np.sqrt(max(rows, 1)))))))


def probes_for(rows: int, cells: int) -> int:
    """``nprobe`` for a set of ``rows`` in ``cells`` cells: :data:`NPROBE`, or enough cells to scan
    :data:`SCANNED_CODES` codes, at most every cell."""
    per_cell = max(rows / max(cells, 1), 1.0)
    return int(min(cells, max(NPROBE, np.ceil(SCANNED_CODES / per_cell))))


def candidates_for(rows: int) -> int:
    """Candidates to re-score for a set of ``rows`` (:data:`CANDIDATES` or :data:`MANY_CANDIDATES`)."""
    return MANY_CANDIDATES if rows <= MANY_CANDIDATES_ROWS else CANDIDATES


def subquantizers_for(dims: int) -> int:
    """``M`` (bytes per vector): one byte per 16 dimensions, rounded down to a divisor of ``dims``."""
    m = max(1, dims // 16)
    while dims % m:
        m -= 1
    return m


@dataclass
class Candidates:
    """Ids proposed for ``Q`` queries: ``ids int64 [Q, k]`` (-1 where fewer were found)."""

    ids: np.ndarray


class IvfPqIndex:
    """One vector set's IVF-PQ index (see the module docstring).

    Args:
        dims: vector length ``D``.
        index: a trained FAISS index (or None: :meth:`build` trains one).
        videos: video id -> ingest time of the videos whose rows the index holds.
        saved_rows: vectors held at the last save.
    """

    def __init__(self, dims: int, index=None, videos: Optional[dict] = None, saved_rows: int = 0):
        self.dims = dims
        self.index = index
        self.videos: dict[int, str] = dict(videos or {})
        self.saved_rows = saved_rows

    @classmethod
    def build(cls, vectors: VectorSet, seed: int = 0) -> "IvfPqIndex":
        """Train on a sample of ``vectors`` (``TRAINING_PER_CELL`` rows per cell) and add every row."""
        faiss = _faiss()
        n, dims = vectors.matrix.shape
        nlist = cells_for(n)
        quantizer = f"IVF{nlist}_HNSW32" if nlist >= 1024 else f"IVF{nlist}"
        index = faiss.index_factory(dims, f"{quantizer},PQ{subquantizers_for(dims)}", faiss.METRIC_L2)
        ivf = faiss.extract_index_ivf(index)
        ivf.cp.niter = 10
        ivfpq = faiss.downcast_index(ivf)
        ivfpq.do_polysemous_training = False  # only for Hamming-filtered search, which is not used; minutes of CPU
        ivfpq.pq.cp.min_points_per_centroid = 1  # small sets train fine; FAISS would warn
        sample = np.sort(np.random.default_rng(seed).choice(n, min(n, TRAINING_PER_CELL * nlist), replace=False))
        index.train(np.ascontiguousarray(vectors.matrix[sample], np.float32))
        built = cls(dims, index)
        built.sync(vectors)
        return built

    @classmethod
    def load(cls, vectors: VectorSet) -> Optional["IvfPqIndex"]:
        """The index saved in the set's folder, brought in step with the set; None when there is none (or it is
        unreadable, or of another width)."""
        if vectors.folder is None:
            return None
        faiss = _faiss()
        path = vectors.folder.path / f"ann-{vectors.key}"
        try:  # checked against the CRC-32 its sidecar recorded: a damaged cache is rebuilt, never trusted
            meta = json.loads(path.with_suffix(".json").read_text())
            data = path.with_suffix(".faiss").read_bytes()
            if not isinstance(meta, dict) or zlib.crc32(data) != meta.get("crc32"):
                return None
            index = faiss.deserialize_index(np.frombuffer(data, np.uint8))
        except (OSError, ValueError, RuntimeError, TypeError):
            return None
        if index.d != vectors.matrix.shape[1] or index.ntotal != meta.get("ntotal"):
            return None
        loaded = cls(index.d, index, {int(v): str(s) for v, s in meta["videos"]}, int(index.ntotal))
        loaded.sync(vectors)
        return loaded

    def sync(self, vectors: VectorSet) -> bool:
        """Remove the ids of videos the set no longer holds, add the rows of videos it gained; save when enough
        was added. Returns True when anything changed."""
        faiss = _faiss()
        gone = [v for v, stamp in self.videos.items() if vectors.videos.get(v) != stamp]
        if gone:
            present = np.zeros(int(vectors.ids.max(initial=0)) + 1, bool)  # ids past its end count as absent
            present[vectors.ids] = True
            bits = _bits(present)
            self.index.remove_ids(faiss.IDSelectorNot(faiss.IDSelectorBitmap(len(present), faiss.swig_ptr(bits))))
            for v in gone:
                del self.videos[v]
        new = [v for v in vectors.videos if v not in self.videos]
        if new:
            rows = np.flatnonzero(np.isin(vectors.video_ids, new))
            for start in range(0, len(rows), 65536):
                chunk = rows[start : start + 65536]
                self.index.add_with_ids(
                    np.ascontiguousarray(vectors.matrix[chunk], np.float32),
                    np.ascontiguousarray(vectors.ids[chunk], np.int64),
                )
            self.videos.update({v: vectors.videos[v] for v in new})
        if vectors.folder is not None and (
            self.saved_rows == 0 or gone or abs(self.index.ntotal - self.saved_rows) >= SAVE_EVERY
        ):
            self.save(vectors)
        return bool(gone or new)

    def save(self, vectors: VectorSet) -> None:
        """Write the index and the videos it holds into the set's folder (atomically, index first)."""
        faiss = _faiss()
        folder = vectors.folder.path
        path = folder / f"ann-{vectors.key}"
        data = faiss.serialize_index(self.index).tobytes()
        try:
            with tempfile.NamedTemporaryFile(dir=folder, delete=False, suffix=".tmp") as handle:
                handle.write(data)
            os.replace(handle.name, path.with_suffix(".faiss"))
            with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, suffix=".tmp") as handle:
                json.dump(
                    {
                        "videos": sorted(self.videos.items()),
                        "crc32": zlib.crc32(data),
                        "ntotal": int(self.index.ntotal),
                    },
                    handle,
                )
            os.replace(handle.name, path.with_suffix(".json"))
        except OSError:  # a full disk: the index stays in memory; a stale pair is refused by its checksum
            Path(handle.name).unlink(missing_ok=True)
            return
        self.saved_rows = int(self.index.ntotal)

    def candidates(
        self, queries: np.ndarray, k: int, allowed: Optional[np.ndarray] = None, nprobe: Optional[int] = None
    ) -> Candidates:
        """The ``k`` approximate nearest ids of each of ``queries`` (``float32 [Q, D]``); ``allowed`` is a
        ``bool`` array indexed by id (True: may be returned), or None for every id; ``nprobe`` None:
        :func:`probes_for` the index's size."""
        faiss = _faiss()
        cells = faiss.extract_index_ivf(self.index).nlist
        params = faiss.SearchParametersIVF(nprobe=nprobe or probes_for(int(self.index.ntotal), cells))
        if allowed is not None:
            bits = _bits(allowed)
            params.sel = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bits))
        _, ids = self.index.search(np.ascontiguousarray(queries, np.float32), int(k), params=params)
        return Candidates(ids)


def _bits(mask: np.ndarray) -> np.ndarray:
    """A ``bool [n]`` mask as the little-endian bitmap FAISS selectors read (``uint8 [ceil(n / 8)]``)."""
    return np.packbits(mask, bitorder="little")
