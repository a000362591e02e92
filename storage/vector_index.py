"""In-memory vector index over one re-id model's stored embeddings, loaded from the database and kept up to date.

The index holds, for every completely ingested video whose sightings were encoded by the model:

- the sighting embeddings as one ``[N, D]`` matrix (``float16`` by default: half the memory and, on a CPU, about
  half the time of a ``float32`` matrix product, at a cosine error below 1e-3), with each row's sighting, track,
  camera, video and wall-clock time;
- the track descriptors as a ``float32 [T, D]`` matrix with each track's camera and time range.

Rows of one track are contiguous (videos are loaded one at a time and sorted by track), so ``track_rows[t]`` is a
slice.
:meth:`EmbeddingIndex.refresh` compares the database's complete videos with those loaded: it appends the new ones
(ingest adds videos) and drops the deleted ones (a forced re-ingest replaces a video); nothing is read twice.
Scoring (the matrix product) lives in ``pipelines.similarity``; this module only stores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
from sqlalchemy import bindparam, text

from reid_app.errors import DatabaseError
from storage.database import Database

_SIGHTING_ROWS = text(
    "SELECT s.id, s.track_id, t.camera_id, s.video_id, s.timestamp, e.vector "
    "FROM sightings s JOIN embeddings e ON e.sighting_id = s.id JOIN tracks t ON t.id = s.track_id "
    "WHERE s.video_id = :video AND +e.model_id = :model"
)  # the unary + keeps SQLite from driving the join by the model index (every embedding of the model, per video)

_TRACK_ROWS = text(
    "SELECT t.id, t.camera_id, t.video_id, v.start_time + t.first_time_s, v.start_time + t.last_time_s, "
    "t.descriptor FROM tracks t JOIN videos v ON v.id = t.video_id "
    "WHERE t.video_id IN :videos AND t.descriptor_model_id = :model AND t.descriptor IS NOT NULL ORDER BY t.id"
).bindparams(bindparam("videos", expanding=True))

_SIGHTING_COUNT = text(
    "SELECT count(*) FROM sightings s JOIN embeddings e ON e.sighting_id = s.id "
    "WHERE s.video_id IN :videos AND +e.model_id = :model"
).bindparams(bindparam("videos", expanding=True))

_COMPLETE_VIDEOS = text("SELECT DISTINCT v.id FROM videos v JOIN tracks t ON t.video_id = v.id "
                        "WHERE v.status IN ('complete', 'damaged') AND t.descriptor_model_id = :model")

#: Videos read per query while loading, so the IN list and the fetched batch stay bounded.
_VIDEOS_PER_QUERY = 50


@dataclass
class TrackTable:
    """The tracks of the index, one row per track with a descriptor.

    Attributes:
        track_ids, camera_ids, video_ids: ``int64 [T]``.
        first_timestamps, last_timestamps: ``float64 [T]``, seconds since the epoch.
        descriptors: ``float32 [T, D]``, rows L2-normalised.
    """

    track_ids: np.ndarray
    camera_ids: np.ndarray
    video_ids: np.ndarray
    first_timestamps: np.ndarray
    last_timestamps: np.ndarray
    descriptors: np.ndarray
    position: dict[int, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.track_ids)


@dataclass
class RefreshReport:
    """What :meth:`EmbeddingIndex.refresh` changed: video ids added and removed, sighting rows now held."""

    added_videos: list[int]
    removed_videos: list[int]
    rows: int


def _empty_tracks(dims: int) -> TrackTable:
    return TrackTable(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0),
                      np.zeros(0), np.zeros((0, dims), np.float32))


class EmbeddingIndex:
    """One model's sighting embeddings and track descriptors, in memory (see the module docstring).

    Attributes (views of the first :attr:`size` rows):
        matrix: ``[N, D]`` of :attr:`dtype`, rows L2-normalised.
        sighting_ids, track_ids, camera_ids, video_ids: ``int64 [N]``.
        timestamps: ``float64 [N]``, seconds since the epoch.
        track_rows: track id -> ``slice`` of its rows.
        segment_starts, segment_tracks, segment_positions: ``int64 [S]`` first row of each track's run of rows,
            its track id and its row in :attr:`tracks` (-1 when it has no descriptor), for ``np.add.reduceat``.
        row_segments: ``int64 [N]`` the segment of each row (for per-track maxima).
        tracks: the :class:`TrackTable`.
        generation: incremented whenever rows are removed or reordered, so a copy on a GPU knows to re-upload;
            appends only grow :attr:`size`.
    """

    def __init__(self, model_id: int, dims: int, dtype: np.dtype = np.float16, with_sightings: bool = True,
                 copy_rows: Callable[[np.ndarray, np.ndarray], None] = np.copyto):
        self.model_id = model_id
        self.copy_rows = copy_rows
        self.with_sightings = with_sightings
        self.dims = dims
        self.dtype = np.dtype(dtype)
        self.size = 0
        self.generation = 0
        self._matrix = np.zeros((0, dims), self.dtype)
        self._meta = np.zeros((0, 4), np.int64)  # sighting, track, camera, video
        self._times = np.zeros(0, np.float64)
        self.track_rows: dict[int, slice] = {}
        self.segment_starts = np.zeros(0, np.int64)
        self.segment_tracks = np.zeros(0, np.int64)
        self.segment_positions = np.zeros(0, np.int64)
        self.row_segments = np.zeros(0, np.int64)
        self.tracks = _empty_tracks(dims)
        self.videos: set[int] = set()

    @classmethod
    def load(cls, db: Database, model_id: int, dims: int, dtype: np.dtype = np.float16,
             with_sightings: bool = True, copy_rows: Callable[[np.ndarray, np.ndarray], None] = np.copyto
             ) -> "EmbeddingIndex":
        """A new index holding every complete video's embeddings of ``model_id`` (``dims`` wide); with
        ``with_sightings=False`` only the track table (enough for clustering, far smaller). ``copy_rows(dst, src)``
        copies ``float32`` rows into the ``dtype`` matrix (numpy's conversion to float16 is slow; the search
        pipeline passes torch's)."""
        index = cls(model_id, dims, dtype, with_sightings, copy_rows)
        index.refresh(db)
        return index

    @property
    def matrix(self) -> np.ndarray:
        return self._matrix[:self.size]

    @property
    def sighting_ids(self) -> np.ndarray:
        return self._meta[:self.size, 0]

    @property
    def track_ids(self) -> np.ndarray:
        return self._meta[:self.size, 1]

    @property
    def camera_ids(self) -> np.ndarray:
        return self._meta[:self.size, 2]

    @property
    def video_ids(self) -> np.ndarray:
        return self._meta[:self.size, 3]

    @property
    def timestamps(self) -> np.ndarray:
        return self._times[:self.size]

    def nbytes(self) -> int:
        """Bytes held by the rows in use (matrix, ids, times and track descriptors)."""
        return (self.matrix.nbytes + self._meta[:self.size].nbytes + self.timestamps.nbytes
                + self.tracks.descriptors.nbytes)

    def refresh(self, db: Database) -> RefreshReport:
        """Bring the index up to date with the database: load new complete videos, drop deleted ones."""
        with db.engine.connect() as con:
            current = {int(r[0]) for r in con.execute(_COMPLETE_VIDEOS, {"model": self.model_id})}
            added = sorted(current - self.videos)
            removed = sorted(self.videos - current)
            if removed:
                self._remove(removed)
            batches = [added[i:i + _VIDEOS_PER_QUERY] for i in range(0, len(added), _VIDEOS_PER_QUERY)]
            if self.with_sightings and added:  # sized once: regrowing a multi-GB matrix costs more than counting
                self._reserve(self.size + sum(con.execute(_SIGHTING_COUNT, {"videos": b, "model": self.model_id})
                                              .scalar_one() for b in batches))
            for batch in batches:
                self._append(con, batch)
        if added or removed:
            self._index_tracks()
        return RefreshReport(added, removed, self.size)

    def _append(self, con, video_ids: list[int]) -> None:
        if self.with_sightings:
            self._append_sightings(con, video_ids)
        self._append_tracks(con, video_ids)
        self.videos.update(video_ids)

    def _append_sightings(self, con, video_ids: list[int]) -> None:
        for video_id in video_ids:
            start = self.size
            result = con.execute(_SIGHTING_ROWS, {"video": video_id, "model": self.model_id})
            while True:
                chunk = result.fetchmany(65536)
                if not chunk:
                    break
                n = len(chunk)
                self._reserve(self.size + n)
                sighting, track, camera, video, times, blobs = zip(*chunk)
                block = np.frombuffer(b"".join(blobs), dtype="<f4")
                if block.size != n * self.dims:
                    raise DatabaseError(f"database {con.engine.url.database}: embeddings of model "
                                        f"{self.model_id} are not all {self.dims}-dimensional; the database is "
                                        f"damaged")
                rows = slice(self.size, self.size + n)
                self.copy_rows(self._matrix[rows], block.reshape(n, self.dims))
                self._meta[rows] = np.array([sighting, track, camera, video], np.int64).T
                self._times[rows] = times
                self.size += n
            # SQLite would sort whole rows, blobs included, for ORDER BY; sorting here permutes only this video
            segment = slice(start, self.size)
            order = np.lexsort((self._meta[segment, 0], self._meta[segment, 1]))
            if np.any(order[1:] < order[:-1]):
                self._matrix[segment] = self._matrix[segment][order]
                self._meta[segment] = self._meta[segment][order]
                self._times[segment] = self._times[segment][order]

    def _append_tracks(self, con, video_ids: list[int]) -> None:
        tracks = con.execute(_TRACK_ROWS, {"videos": video_ids, "model": self.model_id}).all()
        if tracks:
            old = self.tracks
            new_desc = np.frombuffer(b"".join(r[5] for r in tracks), "<f4").reshape(len(tracks), self.dims)
            self.tracks = TrackTable(
                np.concatenate([old.track_ids, [r[0] for r in tracks]]).astype(np.int64),
                np.concatenate([old.camera_ids, [r[1] for r in tracks]]).astype(np.int64),
                np.concatenate([old.video_ids, [r[2] for r in tracks]]).astype(np.int64),
                np.concatenate([old.first_timestamps, [r[3] for r in tracks]]).astype(np.float64),
                np.concatenate([old.last_timestamps, [r[4] for r in tracks]]).astype(np.float64),
                np.concatenate([old.descriptors, new_desc]).astype(np.float32))

    def _reserve(self, rows: int) -> None:
        if rows <= len(self._matrix):
            return
        capacity = max(rows, int(len(self._matrix) * 1.5), 1024)
        matrix = np.empty((capacity, self.dims), self.dtype)
        matrix[:self.size] = self._matrix[:self.size]
        meta = np.empty((capacity, 4), np.int64)
        meta[:self.size] = self._meta[:self.size]
        times = np.empty(capacity, np.float64)
        times[:self.size] = self._times[:self.size]
        self._matrix, self._meta, self._times = matrix, meta, times
        self.generation += 1  # a device copy of the old buffer is stale

    def _remove(self, video_ids: list[int]) -> None:
        keep = ~np.isin(self.video_ids, video_ids)
        n = int(keep.sum())
        self._matrix[:n] = self.matrix[keep]
        self._meta[:n] = self._meta[:self.size][keep]
        self._times[:n] = self.timestamps[keep]
        self.size = n
        t = self.tracks
        tkeep = ~np.isin(t.video_ids, video_ids)
        self.tracks = TrackTable(t.track_ids[tkeep], t.camera_ids[tkeep], t.video_ids[tkeep],
                                 t.first_timestamps[tkeep], t.last_timestamps[tkeep], t.descriptors[tkeep])
        self.videos.difference_update(video_ids)
        self.generation += 1

    def _index_tracks(self) -> None:
        ids = self.track_ids
        if len(ids):
            starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
            stops = np.r_[starts[1:], len(ids)]
            self.track_rows = {int(ids[a]): slice(int(a), int(b)) for a, b in zip(starts, stops)}
            self.segment_starts, self.segment_tracks = starts.astype(np.int64), ids[starts].copy()
            self.row_segments = np.repeat(np.arange(len(starts), dtype=np.int64), stops - starts)
        else:
            self.row_segments = np.zeros(0, np.int64)
            self.track_rows = {}
            self.segment_starts, self.segment_tracks = np.zeros(0, np.int64), np.zeros(0, np.int64)
        self.tracks.position = {int(t): i for i, t in enumerate(self.tracks.track_ids)}
        self.segment_positions = np.array([self.tracks.position.get(int(t), -1) for t in self.segment_tracks],
                                          np.int64)

    def rows_of(self, track_id: int) -> slice:
        """The rows of a track (an empty slice when the index does not hold it)."""
        return self.track_rows.get(int(track_id), slice(0, 0))

    def descriptor_of(self, track_id: int) -> Optional[np.ndarray]:
        """A track's ``float32 [D]`` descriptor, or None when the index does not hold the track."""
        i = self.tracks.position.get(int(track_id))
        return None if i is None else self.tracks.descriptors[i]
