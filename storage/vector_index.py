"""Vector index over one re-id model's stored embeddings, loaded from the database, kept up to date and, given a
folder, persisted so that the next process opens it in a fraction of a second instead of reading every embedding.

The index holds, for every completely ingested video whose sightings were encoded by the model:

- the sighting embeddings as one ``[N, D]`` matrix (``float16`` by default: half the memory and, on a CPU, about
  half the time of a ``float32`` matrix product, at a cosine error below 1e-3), with each row's sighting, track,
  camera, video and wall-clock time;
- the track descriptors as a ``float32 [T, D]`` matrix with each track's camera and time range.

Rows of one track are contiguous (videos are loaded one at a time and sorted by track), so ``track_rows[t]`` is a
slice. :meth:`EmbeddingIndex.refresh` compares the database's complete videos (id and ingest time) with those
loaded: it appends the new ones (ingest adds videos) and drops the deleted or replaced ones (retention, a forced
re-ingest); nothing is read twice.

With a folder (``storage.index_files``) the matrices live in files mapped into memory: opening an index of a
million embeddings maps 2 GB without reading it, and a search touches only the rows it scores. Every process on
the machine shares the folder: a refresh first adopts what another process already appended, under the folder's
lock. Scoring (the matrix product, approximate search) lives in ``pipelines.matching.similarity``; this module only
stores.

A folder is a cache, checked before it is trusted (``storage.index_files``: sizes and CRC-32 checks recorded in the
manifest). A file that is missing, short, replaced or does not match is never read as rows: the folder is rebuilt
from the database, with one warning. When the folder cannot be written (a full disk) the index is kept in memory,
again with one warning; the files a process maps are checked (inode and size) before every search, so one truncated
under a running process is let go instead of ending in a ``SIGBUS``.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from sqlalchemy import bindparam, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from common.errors import DatabaseError
from storage.database import Database
from storage.index_files import DamagedIndexError, IndexFolder, block_checksums, flush

log = logging.getLogger(__name__)

_SIGHTING_ROWS = text(
    "SELECT s.id, s.track_id, t.camera_id, s.video_id, s.timestamp, e.vector "
    "FROM sightings s JOIN embeddings e ON e.sighting_id = s.id JOIN tracks t ON t.id = s.track_id "
    "WHERE s.video_id IN :videos AND +e.model_id = :model"
).bindparams(bindparam("videos", expanding=True))
# the unary + keeps SQLite from driving the join by the model index (every embedding of the model, per video)

_TRACK_ROWS = text(
    "SELECT t.id, t.camera_id, t.video_id, v.start_time + t.first_time_s, v.start_time + t.last_time_s, "
    "t.descriptor FROM tracks t JOIN videos v ON v.id = t.video_id "
    "WHERE t.video_id IN :videos AND t.descriptor_model_id = :model AND t.descriptor IS NOT NULL ORDER BY t.id"
).bindparams(bindparam("videos", expanding=True))

_SIGHTING_COUNT = text(
    "SELECT s.video_id, count(*) FROM sightings s JOIN embeddings e ON e.sighting_id = s.id "
    "WHERE s.video_id IN :videos AND +e.model_id = :model GROUP BY s.video_id"
).bindparams(bindparam("videos", expanding=True))

_MODEL_VIDEOS = (
    "FROM videos v WHERE v.status IN ('complete', 'damaged') AND (v.model_id = :model OR "
    "(v.model_id IS NULL AND EXISTS (SELECT 1 FROM tracks t WHERE t.video_id = v.id AND "
    "t.descriptor_model_id = :model)))"
)
_COMPLETE_VIDEOS = text("SELECT v.id, v.ingested_at " + _MODEL_VIDEOS)
#: One row that changes whenever a complete video is added, removed or replaced: checked before every search,
#: so an unchanged database costs one aggregate instead of listing every video.
_VIDEOS_SIGNATURE = text("SELECT count(*), max(v.id), sum(v.id), max(v.ingested_at) " + _MODEL_VIDEOS)

#: Videos read per query while loading, so the IN list and the fetched batch stay bounded.
_VIDEOS_PER_QUERY = 50
#: Sighting rows read per query at most (a batch of videos is split so): the rows are re-ordered in memory.
_ROWS_PER_QUERY = 262_144


def database_id(db: Database) -> str:
    """The database's own random id (``reid_meta`` key ``database_id``, made on first use), so that an index
    folder can never be taken for another database's, even one at the same path or URL."""
    read = text("SELECT value FROM reid_meta WHERE key = 'database_id'")
    with db.engine.connect() as con:
        value = con.execute(read).scalar()
    if value is None:
        try:
            with db.engine.begin() as con:
                con.execute(
                    text("INSERT INTO reid_meta (key, value) VALUES ('database_id', :v)"), {"v": uuid.uuid4().hex}
                )
        except IntegrityError:  # another process made it first
            pass
        with db.engine.connect() as con:
            value = con.execute(read).scalar_one()
    return str(value)


def index_folder(db: Database, model_id: int, root: Optional[str | Path]) -> Optional[IndexFolder]:
    """The persisted-index folder of ``db``'s model ``model_id`` under ``root`` (None: keep the index in memory
    only; also None when the folder cannot be created, e.g. a read-only home, or the database cannot be written
    to store its id)."""
    if root is None:
        return None
    try:
        return IndexFolder(Path(root).expanduser() / database_id(db) / f"model-{model_id}")
    except (OSError, SQLAlchemyError):  # no writable cache folder, or a read-only database (no id can be stored)
        return None


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


class _Rows:
    """A growable ``[capacity, width]`` array of one dtype, in memory or in a row file of an :class:`IndexFolder`
    (``<name>-<generation>.bin``)."""

    def __init__(self, name: str, dtype, width: int, folder: Optional[IndexFolder]):
        self.name, self.dtype, self.width, self.folder = name, np.dtype(dtype), width, folder
        self.data = np.zeros((0, width), self.dtype)
        self.mapped: Optional[tuple[str, int, int]] = None  # file name, inode, bytes mapped

    def file(self, generation: int) -> str:
        return f"{self.name}-{generation}.bin"

    def _note_mapping(self, name: str) -> None:
        identity = self.folder.file_identity(name)
        self.mapped = None if identity is None else (name, identity[0], self.data.nbytes)

    def open(self, generation: int, capacity: int) -> None:
        """Map the folder's file of ``generation`` (adopting another process's rows).

        Raises:
            DamagedIndexError: the file is missing or shorter than ``capacity`` rows.
        """
        self.data = self.folder.existing_rows(self.file(generation), self.dtype, self.width, capacity)
        self._note_mapping(self.file(generation))

    def intact(self) -> bool:
        """False when the file this process maps was deleted, replaced or truncated since it was mapped."""
        if self.folder is None or self.mapped is None:
            return True
        identity = self.folder.file_identity(self.mapped[0])
        return identity is not None and identity[0] == self.mapped[1] and identity[1] >= self.mapped[2]

    def forget(self, folder: Optional[IndexFolder]) -> None:
        """Let go of the rows without reading them (a file truncated under a mapping must never be touched)."""
        self.folder, self.mapped = folder, None
        self.data = np.zeros((0, self.width), self.dtype)

    def reserve(self, rows: int, used: int, generation: int) -> bool:
        """Room for ``rows`` rows keeping the first ``used``; True when the buffer moved (in memory)."""
        if rows <= len(self.data):
            return False
        capacity = max(rows, int(len(self.data) * 1.5), 1024)
        if self.folder is not None:  # the file grows in place: rows already there (and readers' views) stay
            self.data = self.folder.rows(self.file(generation), self.dtype, self.width, capacity)
            self._note_mapping(self.file(generation))
            return False
        data = np.empty((capacity, self.width), self.dtype)
        data[:used] = self.data[:used]
        self.data = data
        return True

    def compact(self, runs: list[tuple[int, int]], kept: int, generation: int) -> None:
        """Keep only the row ranges ``runs`` (in order), ``kept`` rows in all: in place in memory, into a new
        generation's file in a folder (readers of the old file are undisturbed)."""
        target = (
            self.data
            if self.folder is None
            else self.folder.rows(self.file(generation), self.dtype, self.width, max(kept, 1024))
        )
        at = 0
        for start, stop in runs:
            target[at : at + stop - start] = self.data[start:stop]
            at += stop - start
        self.data = target
        if self.folder is not None:
            self._note_mapping(self.file(generation))


def _split_by_rows(batches: list[list[int]], counts: dict[int, int]) -> list[list[int]]:
    """``batches`` of video ids split so that none holds more than :data:`_ROWS_PER_QUERY` rows (a bigger video
    stays alone in its batch)."""
    out = []
    for batch in batches:
        current, rows = [], 0
        for video in batch:
            if current and rows + counts.get(video, 0) > _ROWS_PER_QUERY:
                out.append(current)
                current, rows = [], 0
            current.append(video)
            rows += counts.get(video, 0)
        out.append(current)
    return out


def _track_arrays(folder: IndexFolder, version: int, crcs: dict, tracks: int) -> tuple[np.ndarray, np.ndarray]:
    """The saved track table of manifest ``version``: ``int64 [T, 3]`` ids and ``float64 [T, 2]`` times, checked
    against the manifest's CRC-32 values ``crcs`` and its ``tracks`` count.

    Raises:
        DamagedIndexError: a file is missing, damaged or of another length.
    """
    if not isinstance(crcs, dict) or not {"track_ints", "track_times"} <= set(crcs):
        raise DamagedIndexError("the manifest has no checksums of the track arrays")
    ints = folder.load_array(f"track_ints-{version}.npy", crcs["track_ints"])
    times = folder.load_array(f"track_times-{version}.npy", crcs["track_times"])
    if ints.shape != (tracks, 3) or times.shape != (tracks, 2):
        raise DamagedIndexError(f"the track arrays of version {version} do not hold {tracks} tracks")
    return ints, times


def _runs(keep: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` of each run of True in a ``bool [N]`` mask."""
    edges = np.flatnonzero(np.diff(np.r_[0, keep.astype(np.int8), 0]))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


class EmbeddingIndex:
    """One model's sighting embeddings and track descriptors (see the module docstring).

    Attributes (views of the first :attr:`size` rows):
        matrix: ``[N, D]`` of :attr:`dtype`, rows L2-normalised.
        sighting_ids, track_ids, camera_ids, video_ids: ``int64 [N]``.
        timestamps: ``float64 [N]``, seconds since the epoch.
        track_rows: track id -> ``slice`` of its rows.
        segment_starts, segment_tracks, segment_positions: ``int64 [S]`` first row of each track's run of rows,
            its track id and its row in :attr:`tracks` (-1 when it has no descriptor), for ``np.add.reduceat``.
        row_segments: ``int64 [N]`` the segment of each row (for per-track maxima).
        tracks: the :class:`TrackTable`.
        videos: video id -> its ingest time (as text), for every video held.
        generation: incremented whenever rows are removed or reordered, so a copy on a GPU (or an approximate
            index) knows to start again; appends only grow :attr:`size`.
        folder: the :class:`storage.index_files.IndexFolder` the index is persisted in, or None (memory only).
    """

    def __init__(
        self,
        model_id: int,
        dims: int,
        dtype: np.dtype = np.float16,
        with_sightings: bool = True,
        copy_rows: Callable[[np.ndarray, np.ndarray], None] = np.copyto,
        folder: Optional[IndexFolder] = None,
        database: str = "",
    ):
        self.model_id = model_id
        self.copy_rows = copy_rows
        self.with_sightings = with_sightings
        self.dims = dims
        self.dtype = np.dtype(dtype)
        self.database = database
        # a tracks-only index (clustering) reads a folder but never writes it: the folder must hold sightings too
        self._source = folder
        self.folder = writable = folder if with_sightings else None
        self.size = 0
        self.generation = 0
        self._version: Optional[int] = None  # the manifest version this process's view matches
        self._signature: Optional[tuple] = None  # the database's complete videos when last refreshed
        self._seen_manifest: Optional[tuple] = None  # the folder's manifest file when last read or written
        self._matrix = _Rows("sightings", self.dtype, dims, writable)
        self._meta = _Rows("meta", np.int64, 4, writable)  # sighting, track, camera, video
        self._times = _Rows("times", np.float64, 1, writable)
        self._descriptors = _Rows("tracks", np.float32, dims, writable)
        self.track_rows: dict[int, slice] = {}
        self.segment_starts = np.zeros(0, np.int64)
        self.segment_tracks = np.zeros(0, np.int64)
        self.segment_positions = np.zeros(0, np.int64)
        self.row_segments = np.zeros(0, np.int64)
        self.tracks = self._track_table(np.zeros((0, 3), np.int64), np.zeros((0, 2)), 0)
        self.videos: dict[int, str] = {}
        self._checks: dict[str, dict] = {}  # row file name -> its checks, as last verified or saved here
        self._warned = False

    @classmethod
    def load(
        cls,
        db: Database,
        model_id: int,
        dims: int,
        dtype: np.dtype = np.float16,
        with_sightings: bool = True,
        copy_rows: Callable[[np.ndarray, np.ndarray], None] = np.copyto,
        folder: Optional[IndexFolder] = None,
    ) -> "EmbeddingIndex":
        """A new index holding every complete video's embeddings of ``model_id`` (``dims`` wide); with
        ``with_sightings=False`` only the track table (enough for clustering, far smaller). ``copy_rows(dst, src)``
        copies ``float32`` rows into the ``dtype`` matrix (numpy's conversion to float16 is slow; the search
        pipeline passes torch's). With ``folder`` (:func:`index_folder`) what is saved there is opened first and
        only the difference is read from the database.

        Raises:
            DatabaseError: stored embeddings are not ``dims`` wide.
        """
        index = cls(model_id, dims, dtype, with_sightings, copy_rows, folder, database_id(db) if folder else "")
        if folder is not None and not with_sightings:
            index._adopt_copy()  # then only what changed since comes from the database, into memory
        index.refresh(db)
        return index

    @property
    def key(self) -> str:
        """Names this vector set in caches and files."""
        return f"sightings-m{self.model_id}"

    @property
    def matrix(self) -> np.ndarray:
        return self._matrix.data[: self.size]

    @property
    def ids(self) -> np.ndarray:
        """Each row's stable id (its sighting id), ``int64 [N]``."""
        return self._meta.data[: self.size, 0]

    @property
    def sighting_ids(self) -> np.ndarray:
        return self._meta.data[: self.size, 0]

    @property
    def track_ids(self) -> np.ndarray:
        return self._meta.data[: self.size, 1]

    @property
    def camera_ids(self) -> np.ndarray:
        return self._meta.data[: self.size, 2]

    @property
    def video_ids(self) -> np.ndarray:
        return self._meta.data[: self.size, 3]

    @property
    def timestamps(self) -> np.ndarray:
        return self._times.data[: self.size, 0]

    def nbytes(self) -> int:
        """Bytes held by the rows in use (matrix, ids, times and track descriptors)."""
        return (
            self.matrix.nbytes
            + self._meta.data[: self.size].nbytes
            + self.timestamps.nbytes
            + self.tracks.descriptors.nbytes
        )

    # -- keeping up with the database -----------------------------------------------------------------------

    def refresh(self, db: Database) -> RefreshReport:
        """Bring the index up to date with the database: load new complete videos, drop deleted or replaced
        ones; with a folder, first adopt what another process saved, and save the result.

        Raises:
            DatabaseError: stored embeddings are not :attr:`dims` wide.
        """
        with db.engine.connect() as con:
            signature = tuple(str(v) for v in con.execute(_VIDEOS_SIGNATURE, {"model": self.model_id}).one())
            if signature == self._signature and self._manifest_stat() == self._seen_manifest and self._files_intact():
                return RefreshReport([], [], self.size)  # nothing changed, here or in the folder
            current = {int(r[0]): str(r[1]) for r in con.execute(_COMPLETE_VIDEOS, {"model": self.model_id})}
        if self.folder is None:
            report = self._apply(db, current)
        else:
            try:
                report = self._refresh_folder(db, current)
            except OSError as exc:  # a full disk, a folder made read-only: the index lives on in memory
                self._let_go(None, f"cannot be written ({exc.strerror or exc}); the index is kept in memory")
                report = self._apply(db, current)
        self._signature = signature
        return report

    def _refresh_folder(self, db: Database, current: dict[int, str]) -> RefreshReport:
        with self.folder.locked():
            manifest = self.folder.read_manifest()
            if not self._files_intact():
                self._let_go(
                    self.folder,
                    "files this process maps were deleted, replaced or truncated; rebuilding it from the database",
                )
            if manifest is not None and manifest.get("version") != self._version:
                adopted = False
                if self._compatible(manifest):
                    try:
                        self._adopt(manifest)
                        adopted = True
                    except DamagedIndexError as exc:
                        self._let_go(self.folder, f"{exc}; rebuilding it from the database")
                if not adopted:  # written anew past the folder's generation (another database's, or damaged)
                    self.generation = max(self.generation, int(manifest.get("generation", 0))) + 1
            report = self._apply(db, current)
            if report.added_videos or report.removed_videos or self._version is None:
                self._save(manifest)
            self._seen_manifest = self._manifest_stat()
        return report

    def _files_intact(self) -> bool:
        return all(rows.intact() for rows in (self._matrix, self._meta, self._times, self._descriptors))

    def _let_go(self, folder: Optional[IndexFolder], why: str) -> None:
        """Drop every row held (without reading any) and start again empty, in ``folder`` (None: in memory);
        warns once per index."""
        if not self._warned:
            where = self.folder.path if self.folder is not None else "in memory"
            log.warning("search index %s: %s", where, why)
            self._warned = True
        self.folder = folder
        for rows in (self._matrix, self._meta, self._times, self._descriptors):
            rows.forget(folder)
        self.size = 0
        self.generation += 1
        self.videos = {}
        self._version = None
        self._checks = {}
        self.tracks = self._track_table(np.zeros((0, 3), np.int64), np.zeros((0, 2)), 0)
        self._index_tracks()

    def _manifest_stat(self) -> Optional[tuple]:
        """What identifies the folder's current manifest (replaced atomically: a new inode each time)."""
        if self.folder is None:
            return None
        try:
            st = (self.folder.path / "manifest.json").stat()
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _apply(self, db: Database, current: dict[int, str]) -> RefreshReport:
        removed = sorted(v for v, stamp in self.videos.items() if current.get(v) != stamp)
        if removed:
            self._remove(removed)
        added = sorted(v for v in current if v not in self.videos)
        if added:
            with db.engine.connect() as con:
                batches = [added[i : i + _VIDEOS_PER_QUERY] for i in range(0, len(added), _VIDEOS_PER_QUERY)]
                if self.with_sightings:  # sized once: regrowing a multi-GB matrix costs more than counting
                    counts = {
                        int(v): int(n)
                        for b in batches
                        for v, n in con.execute(_SIGHTING_COUNT, {"videos": b, "model": self.model_id})
                    }
                    self._reserve(self.size + sum(counts.values()))
                    batches = _split_by_rows(batches, counts)
                for batch in batches:
                    self._append(con, batch, current)
        if added or removed:
            self._index_tracks()
        return RefreshReport(added, removed, self.size)

    def _append(self, con, video_ids: list[int], stamps: dict[int, str]) -> None:
        if self.with_sightings:  # one query per batch of videos: a round trip per video costs PostgreSQL minutes
            self._append_sightings(con, video_ids)
        self._append_tracks(con, video_ids)
        self.videos.update({v: stamps[v] for v in video_ids})

    def _check_width(self, con, block: np.ndarray, n: int) -> None:
        if block.size != n * self.dims:
            raise DatabaseError(
                f"database {con.engine.url.database}: embeddings of model {self.model_id} are not "
                f"all {self.dims}-dimensional; the database is damaged"
            )

    def _append_sightings(self, con, video_ids: list[int]) -> None:
        start = self.size
        result = con.execute(_SIGHTING_ROWS, {"videos": video_ids, "model": self.model_id})
        while True:
            chunk = result.fetchmany(65536)
            if not chunk:
                break
            n = len(chunk)
            self._reserve(self.size + n)
            sighting, track, camera, video, times, blobs = zip(*chunk)
            block = np.frombuffer(b"".join(blobs), dtype="<f4")
            self._check_width(con, block, n)
            rows = slice(self.size, self.size + n)
            self.copy_rows(self._matrix.data[rows], block.reshape(n, self.dims))
            self._meta.data[rows] = np.array([sighting, track, camera, video], np.int64).T
            self._times.data[rows, 0] = times
            self.size += n
        # SQLite would sort whole rows, blobs included, for ORDER BY; sorting here permutes only these videos' ids
        # (by video, track, sighting: a track's rows contiguous)
        segment = slice(start, self.size)
        meta = self._meta.data[segment]
        order = np.lexsort((meta[:, 0], meta[:, 1], meta[:, 3]))
        if np.any(order[1:] < order[:-1]):
            for rows in (self._matrix, self._meta, self._times):
                rows.data[segment] = rows.data[segment][order]

    def _append_tracks(self, con, video_ids: list[int]) -> None:
        tracks = con.execute(_TRACK_ROWS, {"videos": video_ids, "model": self.model_id}).all()
        if not tracks:
            return
        old, n = len(self.tracks), len(tracks)
        block = np.frombuffer(b"".join(r[5] for r in tracks), "<f4")
        self._check_width(con, block, n)
        self._descriptors.reserve(old + n, old, self.generation)
        self._descriptors.data[old : old + n] = block.reshape(n, self.dims)
        ints = np.concatenate([self._track_ints(), np.array([r[:3] for r in tracks], np.int64)])
        times = np.concatenate([self._track_times(), np.array([r[3:5] for r in tracks], np.float64)])
        self.tracks = self._track_table(ints, times, old + n)

    def _track_ints(self) -> np.ndarray:
        t = self.tracks
        return np.stack([t.track_ids, t.camera_ids, t.video_ids], axis=1)

    def _track_times(self) -> np.ndarray:
        t = self.tracks
        return np.stack([t.first_timestamps, t.last_timestamps], axis=1)

    def _track_table(self, ints: np.ndarray, times: np.ndarray, count: int) -> TrackTable:
        return TrackTable(ints[:, 0], ints[:, 1], ints[:, 2], times[:, 0], times[:, 1], self._descriptors.data[:count])

    def _reserve(self, rows: int) -> None:
        moved = [r.reserve(rows, self.size, self.generation) for r in (self._matrix, self._meta, self._times)]
        if any(moved):
            self.generation += 1  # a device copy of the old buffer is stale

    def _remove(self, video_ids: list[int]) -> None:
        self.generation += 1
        keep = ~np.isin(self.video_ids, video_ids)
        runs, kept = _runs(keep), int(keep.sum())
        for rows in (self._matrix, self._meta, self._times):
            rows.compact(runs, kept, self.generation)
        self.size = kept
        tkeep = ~np.isin(self.tracks.video_ids, video_ids)
        ints, times = self._track_ints()[tkeep], self._track_times()[tkeep]
        self._descriptors.compact(_runs(tkeep), int(tkeep.sum()), self.generation)
        self.tracks = self._track_table(ints, times, int(tkeep.sum()))
        for v in video_ids:
            self.videos.pop(v, None)

    def _index_tracks(self) -> None:
        ids = self.track_ids
        if len(ids):
            starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
            stops = np.r_[starts[1:], len(ids)]
            self.track_rows = dict(zip(ids[starts].tolist(), map(slice, starts.tolist(), stops.tolist())))
            self.segment_starts, self.segment_tracks = starts.astype(np.int64), np.array(ids[starts])
            self.row_segments = np.repeat(np.arange(len(starts), dtype=np.int64), stops - starts)
        else:
            self.row_segments = np.zeros(0, np.int64)
            self.track_rows = {}
            self.segment_starts, self.segment_tracks = np.zeros(0, np.int64), np.zeros(0, np.int64)
        track_ids = self.tracks.track_ids
        self.tracks.position = dict(zip(track_ids.tolist(), range(len(track_ids))))
        self.segment_positions = np.full(len(self.segment_tracks), -1, np.int64)
        if len(track_ids) and len(self.segment_tracks):
            order = np.argsort(track_ids, kind="stable")
            candidate = order[np.minimum(np.searchsorted(track_ids, self.segment_tracks, sorter=order), len(order) - 1)]
            found = track_ids[candidate] == self.segment_tracks
            self.segment_positions[found] = candidate[found]

    # -- the folder ------------------------------------------------------------------------------------------

    def _compatible(self, manifest: dict) -> bool:
        return (
            manifest.get("database") == self.database
            and manifest.get("model") == self.model_id
            and manifest.get("dims") == self.dims
            and manifest.get("dtype") == self.dtype.str
        )

    def _verify(self, rows: _Rows, used: int, checks: dict) -> None:
        """Check the first ``used`` rows of ``rows`` against the manifest's ``checks`` of its file (blocks this
        process verified before are not read again)."""
        name = rows.mapped[0] if rows.mapped else rows.file(self.generation)
        expected = checks.get(name)
        if not isinstance(expected, dict):
            raise DamagedIndexError(f"the manifest has no checks for {name}")
        found = block_checksums(rows.data[:used], self._checks.get(name))
        if found != expected:
            raise DamagedIndexError(f"{name} does not match its checksums")
        self._checks[name] = found

    def _adopt(self, manifest: dict) -> None:
        """Take the folder's saved state as this process's view: files are mapped, and their rows in use checked
        against the manifest (each block once per process).

        Raises:
            DamagedIndexError: a file is missing, short or does not match; the manifest is incomplete.
        """
        try:
            generation, size, tracks = int(manifest["generation"]), int(manifest["size"]), int(manifest["tracks"])
            capacity, track_capacity = int(manifest["capacity"]), int(manifest["track_capacity"])
            version, checks, arrays = int(manifest["version"]), manifest["checks"], manifest["arrays"]
            videos = {int(v): str(stamp) for v, stamp in manifest["videos"]}
        except (KeyError, TypeError, ValueError) as exc:
            raise DamagedIndexError(f"the manifest is incomplete ({exc})") from None
        if generation != self.generation:
            self._checks = {}
        self.generation, self.size = generation, size
        for rows in (self._matrix, self._meta, self._times):
            rows.open(generation, max(capacity, size))
            self._verify(rows, size, checks)
        self._descriptors.open(generation, max(track_capacity, tracks))
        self._verify(self._descriptors, tracks, checks)
        ints, times = _track_arrays(self.folder, version, arrays, tracks)
        self.tracks = self._track_table(ints, times, tracks)
        self.videos = videos
        self._version = version
        self._index_tracks()

    def _adopt_copy(self) -> None:
        """A tracks-only index starts from a copy of the folder's track table when the folder is usable."""
        manifest = self._source.read_manifest()
        if manifest is None or not self._compatible(manifest):
            return
        try:  # everything read and checked first, so a failure leaves the index empty (then read from the database)
            version, tracks = int(manifest["version"]), int(manifest["tracks"])
            name = self._descriptors.file(int(manifest["generation"]))
            saved = self._source.existing_rows(name, np.float32, self.dims, max(tracks, 1))[:tracks]
            descriptors = np.array(saved, np.float32)
            if block_checksums(descriptors) != manifest["checks"][name]:
                raise DamagedIndexError(f"{name} does not match its checksums")
            ints, times = _track_arrays(self._source, version, manifest["arrays"], tracks)
            videos = {int(v): str(stamp) for v, stamp in manifest["videos"]}
        except (OSError, ValueError, KeyError, TypeError, DamagedIndexError):  # damaged: read from the database
            return
        self._descriptors.data = descriptors
        self.tracks = self._track_table(ints, times, tracks)
        self.videos = videos
        self._index_tracks()

    def _save(self, previous: Optional[dict]) -> None:
        flush(self._matrix.data, self._meta.data, self._times.data, self._descriptors.data)
        try:
            version = int((previous or {}).get("version", 0)) + 1
        except (TypeError, ValueError):
            version = 1
        version = max(version, (self._version or 0) + 1)
        arrays = {
            "track_ints": self.folder.save_array(f"track_ints-{version}.npy", self._track_ints()),
            "track_times": self.folder.save_array(f"track_times-{version}.npy", self._track_times()),
        }
        checks = {}
        for rows, used in (
            (self._matrix, self.size),
            (self._meta, self.size),
            (self._times, self.size),
            (self._descriptors, len(self.tracks)),
        ):
            name = rows.file(self.generation)
            checks[name] = self._checks[name] = block_checksums(rows.data[:used], self._checks.get(name))
        self.folder.write_manifest(
            {
                "database": self.database,
                "model": self.model_id,
                "dims": self.dims,
                "dtype": self.dtype.str,
                "generation": self.generation,
                "version": version,
                "size": self.size,
                "capacity": len(self._matrix.data),
                "tracks": len(self.tracks),
                "track_capacity": len(self._descriptors.data),
                "videos": sorted(self.videos.items()),
                "checks": checks,
                "arrays": arrays,
            }
        )
        self._version = version
        files = {r.file(self.generation) for r in (self._matrix, self._meta, self._times, self._descriptors)}
        self.folder.remove_except(
            files
            | {f"track_ints-{version}.npy", f"track_times-{version}.npy"}
            | {p.name for p in self.folder.path.glob("ann-*")}
        )

    def track_vectors(self) -> "TrackVectors":
        """The track descriptors as a vector set of their own (to rank tracks by descriptor)."""
        return TrackVectors(self)

    # -- lookups ---------------------------------------------------------------------------------------------

    def rows_of(self, track_id: int) -> slice:
        """The rows of a track (an empty slice when the index does not hold it)."""
        return self.track_rows.get(int(track_id), slice(0, 0))

    def descriptor_of(self, track_id: int) -> Optional[np.ndarray]:
        """A track's ``float32 [D]`` descriptor, or None when the index does not hold the track."""
        i = self.tracks.position.get(int(track_id))
        return None if i is None else self.tracks.descriptors[i]


class TrackVectors:
    """An :class:`EmbeddingIndex`'s track descriptors seen as a vector set, with the attributes scorers and the
    approximate index read: ``matrix float32 [T, D]``, ``ids`` (track ids), ``video_ids``, ``videos``, ``size``,
    ``generation``, ``key`` and ``folder``."""

    def __init__(self, index: EmbeddingIndex):
        self.index = index

    @property
    def matrix(self) -> np.ndarray:
        return self.index.tracks.descriptors

    @property
    def ids(self) -> np.ndarray:
        return self.index.tracks.track_ids

    @property
    def video_ids(self) -> np.ndarray:
        return self.index.tracks.video_ids

    @property
    def videos(self) -> dict[int, str]:
        return self.index.videos

    @property
    def size(self) -> int:
        return len(self.index.tracks)

    @property
    def generation(self) -> int:
        return self.index.generation

    @property
    def key(self) -> str:
        return f"tracks-m{self.index.model_id}"

    @property
    def folder(self) -> Optional[IndexFolder]:
        return self.index.folder
