"""The application service: what the desktop app and the command line ask of a reid-app database, in one place.

The app calls these from its worker threads (no Qt here) and never touches storage itself; the CLI calls the same
functions, so both open, list, search, correct and cluster exactly the same way. The catalog types the app shows
(:class:`CameraEntry`, :class:`VideoEntry`, :class:`VideoSightings`) are re-exported from here for the same reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from common.errors import UsageError, setting
from common.settings import vector_index_dir
from pipelines.evidence.export import EvidenceReport, export_identity
from pipelines.matching.feedback import (
    VerdictConflict,
    confirm,
    forget,
    label,
    merge,
    reject,
    replace_verdict,
    split,
    undo,
)
from pipelines.matching.identities import (
    ClusteringReport,
    IdentitySummary,
    cluster_identities,
    identities_after_ingest,
    summarise_identities,
)
from pipelines.matching.search import Searcher, SearchFilters, SearchOptions, SearchResult
from pipelines.matching.similarity import make_scorer
from storage.audit import read_log, record
from storage.catalog import CameraEntry, VideoEntry, VideoSightings, best_thumbnails, list_cameras, video_sightings
from storage.database import Database, integrity_problems, open_database
from storage.feedback import load_overlaps, set_overlap
from storage.identities import identities_of_tracks, labels
from storage.model_registry import ingest_models, list_models
from storage.reads import TrackInfo, get_sightings, get_tracks
from storage.track_checks import static_track_ids, unencoded_tracks
from storage.videos import camera_ids_by_name

__all__ = [
    "CameraEntry",
    "VideoEntry",
    "VideoSightings",
    "EvidenceReport",
    "IdentityDetail",
    "IdentityListing",
    "Overview",
    "SearchFilters",
    "SearchOptions",
    "SearchQuery",
    "TrackSearch",
    "TrackThumbnail",
    "VerdictConflict",
    "camera_overlaps",
    "cluster_after_ingest",
    "list_cameras",
    "confirm",
    "database_model",
    "export_identity",
    "forget",
    "give_verdict",
    "identities_of_tracks",
    "integrity_problems",
    "read_log",
    "identity_detail",
    "identity_thumbnails",
    "label",
    "list_identities",
    "make_searcher",
    "merge",
    "open_investigation",
    "overview",
    "reject",
    "replace_verdict",
    "run_search",
    "search_image",
    "search_track",
    "set_camera_overlap",
    "split",
    "undo",
    "video_overlay",
]


def open_investigation(location: str, create: bool = True) -> Database:
    """Open the database at ``location`` (a file path or URL); ``create`` False refuses a missing one.

    Raises:
        DatabaseError: see :func:`storage.database.open_database`.
    """
    return open_database(location, create=create)


@dataclass
class Overview:
    """What the app shows of a database: cameras with their videos, the identities of the main re-id model, that
    model's weights file (None when none), the names given to identities (id -> (label, note)), the detector
    and pose backend its footage was ingested with (``{"detector": ..., "pose": ...}``, empty when unknown) and
    which cameras are marked as overlapping."""

    cameras: list[CameraEntry]
    identities: list[IdentitySummary]
    model_source: Optional[str]
    labels: dict[int, tuple[str, str]] = field(default_factory=dict)
    ingest_models: dict[str, str] = field(default_factory=dict)
    #: camera name -> names of the cameras marked as overlapping with it.
    overlaps: dict[str, list[str]] = field(default_factory=dict)


def overview(db: Database) -> Overview:
    """Cameras, identities and the model of ``db`` (the model with the most embeddings)."""
    models = list_models(db)
    identities = summarise_identities(db, models[0].id) if models else []
    return Overview(
        list_cameras(db),
        identities,
        models[0].source if models else None,
        labels(db),
        ingest_models(db),
        camera_overlaps(db),
    )


def make_searcher(db: Database, scorer_kind: str = "auto", device: str = "cpu") -> Searcher:
    """A searcher over ``db`` scoring with ``scorer_kind`` (``auto``/``exact``/``ann``) on ``device``, its index
    persisted in :func:`common.settings.vector_index_dir`."""

    return Searcher(db, make_scorer(scorer_kind, device), index_root=vector_index_dir())


@dataclass
class TrackSearch:
    """A search by a track: the query track, its best thumbnail (JPEG or None), the results, milliseconds."""

    query: TrackInfo
    query_thumbnail: Optional[bytes]
    results: list[SearchResult]
    elapsed_ms: float


def search_track(searcher: Searcher, db: Database, track_id: int, top_k: int) -> TrackSearch:
    """Search every camera for the person of track ``track_id`` (one sighting per result).

    Raises:
        UsageError: unknown or unencoded track.
    """
    started = time.perf_counter()
    results = searcher.by_track(track_id, SearchOptions(top_k=top_k, samples_per_track=1))
    elapsed_ms = (time.perf_counter() - started) * 1000
    thumb = best_thumbnails(db, [track_id]).get(track_id)
    return TrackSearch(get_tracks(db, [track_id])[track_id], thumb[1] if thumb else None, results, elapsed_ms)


@dataclass
class TrackThumbnail:
    """One track shown by its best thumbnail: camera, wall-clock time of that sighting, JPEG bytes."""

    track_id: int
    camera: str
    timestamp: float
    jpeg: Optional[bytes]


def identity_thumbnails(db: Database, track_ids: Sequence[int]) -> list[TrackThumbnail]:
    """The best thumbnail of each of the tracks (tracks without one are left out)."""
    thumbs = best_thumbnails(db, track_ids)
    sightings = get_sightings(db, [s for s, _ in thumbs.values()])
    tracks = get_tracks(db, track_ids)
    return [
        TrackThumbnail(t, tracks[t].camera, sightings[s].timestamp, jpeg)
        for t, (s, jpeg) in thumbs.items()
        if s in sightings and t in tracks
    ]


def give_verdict(db: Database, verdict: str, track_a: int, track_b: int) -> ClusteringReport:
    """Confirm (``same``) or reject (``different``) a pair of tracks and re-cluster
    (``pipelines.matching.feedback``)."""
    return (confirm if verdict == "same" else reject)(db, track_a, track_b)


def video_overlay(db: Database, video_id: int) -> VideoSightings:
    """The boxes, keypoints and tracks of one video, for drawing over playback."""
    return video_sightings(db, video_id)


def cluster_after_ingest(db: Database) -> Optional[ClusteringReport]:
    """Give the tracks an ingest added identities (incrementally once identities exist:
    ``pipelines.matching.identities.identities_after_ingest``); None when the database holds no embeddings."""
    return identities_after_ingest(db)


def database_model(db: Database) -> Optional[Path]:
    """The re-id weights the database's embeddings were made with (its current model, else its newest model whose
    file still exists), so that an image query is encoded in the vector space searched; None when no such file
    exists."""
    models = list_models(db)  # the current model first
    for model in models[:1] + sorted(models[1:], key=lambda m: m.id, reverse=True):
        if model.source and Path(model.source).exists():
            return Path(model.source)
    return None


@dataclass(frozen=True)
class SearchQuery:
    """What a search starts from: exactly one of a track id, a sighting id or a person image file.

    Raises:
        UsageError: none or several of them given.
    """

    track_id: Optional[int] = None
    sighting_id: Optional[int] = None
    image_path: Optional[str] = None

    def __post_init__(self):
        if sum(x is not None for x in (self.track_id, self.sighting_id, self.image_path)) != 1:
            raise UsageError(
                f"give exactly one of {setting('track')} ID, {setting('sighting')} ID or {setting('image')} FILE"
            )


def run_search(
    searcher: Searcher, query: SearchQuery, options: SearchOptions, filters: SearchFilters, encoder=None
) -> list[SearchResult]:
    """Search from ``query`` (``encoder``: a loaded ``models.encoders.ReIDEncoder`` of the database's model, for
    an image).

    Raises:
        UsageError: the query's errors (see :class:`pipelines.matching.search.Searcher`).
    """
    if query.track_id is not None:
        return searcher.by_track(query.track_id, options, filters)
    if query.sighting_id is not None:
        return searcher.by_sighting(query.sighting_id, options, filters)
    return searcher.by_image(query.image_path, encoder, options, filters)


@dataclass
class ImageSearch:
    """A search by a person image: the image file, its results (one sighting each), milliseconds."""

    image_path: str
    results: list[SearchResult]
    elapsed_ms: float


def search_image(searcher: Searcher, image_path: str, encoder, top_k: int) -> ImageSearch:
    """Search every camera for the person in ``image_path`` (a crop of one person), encoded by ``encoder``.

    Raises:
        UsageError: unreadable image, or no embeddings of the encoder's model in the database.
    """
    started = time.perf_counter()
    results = searcher.by_image(image_path, encoder, SearchOptions(top_k=top_k, samples_per_track=1))
    return ImageSearch(str(image_path), results, (time.perf_counter() - started) * 1000)


@dataclass
class IdentityListing:
    """The identities of a database: summaries (main model), names (id -> (label, note)), the static tracks
    that belong to none, and the clustering report when they were (re)made for this listing (else None)."""

    identities: list[IdentitySummary]
    labels: dict[int, tuple[str, str]]
    static_tracks: set[int]
    report: Optional[ClusteringReport] = None
    #: Tracks with no descriptor (in no identity, not searchable): ``(lasting under 1 s, longer)``.
    unencoded: tuple[int, int] = (0, 0)


def list_identities(db: Database, recluster: bool = False, threshold: Optional[float] = None) -> IdentityListing:
    """The stored identities; clustered first when ``recluster`` or when none are stored yet (``threshold``:
    the average-linkage cosine threshold, default the stored one)."""
    summaries = [] if recluster else summarise_identities(db)
    report = None
    if not summaries:
        report = cluster_identities(db, threshold=threshold)
        summaries = summarise_identities(db)
    return IdentityListing(summaries, labels(db), set(static_track_ids(db)), report, unencoded_tracks(db))


@dataclass
class IdentityDetail:
    """One identity with its tracks (sorted by camera and time) and its name and note ("" when unnamed)."""

    summary: IdentitySummary
    tracks: list[TrackInfo]
    label: str
    note: str


def identity_detail(db: Database, identity_id: int) -> IdentityDetail:
    """The tracks and name of identity ``identity_id``.

    Raises:
        UsageError: no such identity.
    """
    chosen = [s for s in summarise_identities(db) if s.id == identity_id]
    if not chosen:
        raise UsageError(f"identity {identity_id} does not exist in {db.location}")
    tracks = sorted(get_tracks(db, chosen[0].track_ids).values(), key=lambda t: (t.camera, t.first_timestamp))
    name, note = labels(db).get(identity_id, ("", ""))
    return IdentityDetail(chosen[0], tracks, name, note)


def camera_overlaps(db: Database) -> dict[str, list[str]]:
    """Each camera's name -> the names of the cameras marked as seeing a common area with it (sorted)."""
    by_id = {v: k for k, v in camera_ids_by_name(db).items()}
    partners: dict[str, list[str]] = {name: [] for name in sorted(by_id.values())}
    for a, b in load_overlaps(db):
        if a in by_id and b in by_id:
            partners[by_id[a]].append(by_id[b])
            partners[by_id[b]].append(by_id[a])
    return {name: sorted(p) for name, p in partners.items()}


def set_camera_overlap(db: Database, cameras: Sequence[str], overlapping: bool) -> Optional[ClusteringReport]:
    """Mark (or unmark) the named cameras as seeing a common area, so one person may be in them at the same
    instant; audited; identities re-clustered (the report, or None without embeddings).

    Raises:
        UsageError: fewer than two distinct cameras, or an unknown camera name.
    """
    names = camera_ids_by_name(db)
    chosen = list(dict.fromkeys(c.strip() for c in cameras if c.strip()))
    unknown = [c for c in chosen if c not in names]
    if unknown or len(chosen) < 2:
        raise UsageError(
            f"give two or more camera names of {', '.join(sorted(names))}"
            + (f" (unknown: {', '.join(unknown)})" if unknown else "")
        )
    set_overlap(db, [names[c] for c in chosen], overlapping)
    record(db, "overlap", cameras=chosen, overlapping=overlapping)
    return cluster_identities(db, reason="camera overlap changed") if list_models(db) else None
