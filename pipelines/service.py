"""The application service: what the desktop app and the command line ask of a reid-app database, in one place.

The app calls these from its worker threads (no Qt here) and never touches storage itself; the CLI calls the same
functions, so both open, list, search, correct and cluster exactly the same way. The catalog types the app shows
(:class:`CameraEntry`, :class:`VideoEntry`, :class:`VideoSightings`) are re-exported from here for the same reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional, Sequence

from pipelines.feedback import confirm, reject
from pipelines.identities import ClusteringReport, IdentitySummary, cluster_identities, summarise_identities
from pipelines.search import SearchOptions, SearchResult, Searcher
from pipelines.similarity import make_scorer
from storage.catalog import CameraEntry, VideoEntry, VideoSightings, best_thumbnails, list_cameras, video_sightings
from storage.database import Database, open_database
from storage.identities import labels
from storage.repository import TrackInfo, get_sightings, get_tracks, ingest_models, list_models

__all__ = ["CameraEntry", "VideoEntry", "VideoSightings", "Overview", "TrackSearch", "TrackThumbnail",
           "cluster_after_ingest", "give_verdict", "identity_thumbnails", "make_searcher", "open_investigation",
           "overview", "search_track", "video_overlay"]


def open_investigation(location: str) -> Database:
    """Open (or create) the database at ``location`` (a file path or URL).

    Raises:
        DatabaseError: see :func:`storage.database.open_database`.
    """
    return open_database(location)


@dataclass
class Overview:
    """What the app shows of a database: cameras with their videos, the identities of the main re-id model, that
    model's weights file (None when none), the names given to identities (id -> (label, note)) and the detector
    and pose backend its footage was ingested with (``{"detector": ..., "pose": ...}``, empty when unknown)."""

    cameras: list[CameraEntry]
    identities: list[IdentitySummary]
    model_source: Optional[str]
    labels: dict[int, tuple[str, str]] = field(default_factory=dict)
    ingest_models: dict[str, str] = field(default_factory=dict)


def overview(db: Database) -> Overview:
    """Cameras, identities and the model of ``db`` (the model with the most embeddings)."""
    models = list_models(db)
    identities = summarise_identities(db, models[0].id) if models else []
    return Overview(list_cameras(db), identities, models[0].source if models else None, labels(db),
                    ingest_models(db))


def make_searcher(db: Database, scorer_kind: str = "exact", device: str = "cpu") -> Searcher:
    """A searcher over ``db`` scoring with ``scorer_kind`` (``exact``/``faiss``) on ``device``."""
    return Searcher(db, make_scorer(scorer_kind, device))


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
    return [TrackThumbnail(t, tracks[t].camera, sightings[s].timestamp, jpeg) for t, (s, jpeg) in thumbs.items()
            if s in sightings and t in tracks]


def give_verdict(db: Database, verdict: str, track_a: int, track_b: int) -> ClusteringReport:
    """Confirm (``same``) or reject (``different``) a pair of tracks and re-cluster (``pipelines.feedback``)."""
    return (confirm if verdict == "same" else reject)(db, track_a, track_b)


def video_overlay(db: Database, video_id: int) -> VideoSightings:
    """The boxes, keypoints and tracks of one video, for drawing over playback."""
    return video_sightings(db, video_id)


def cluster_after_ingest(db: Database) -> Optional[ClusteringReport]:
    """Re-cluster the identities after an ingest added tracks; None when the database holds no embeddings."""
    if not list_models(db):
        return None
    return cluster_identities(db, reason="after ingest")

