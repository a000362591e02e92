"""SQLAlchemy ORM schema of a reid-app database.

Tables: ``reid_meta`` (key/value, holds the schema version), ``models``, ``cameras``, ``videos``, ``tracks``,
``sightings``, ``embeddings``; cross-camera matching adds ``camera_overlaps``, ``identities``, ``identity_tracks``,
``pair_feedback`` and ``audit_log`` (schema 2); live sites add ``watchlist`` and ``alerts`` (schema 4), the files the
recorder made (``recorded_files``) and the webhook outbox (``webhook_outbox``, schema 5). Deleting a video cascades to
its tracks, sightings and embeddings,
and from the tracks to their identity memberships and feedback.

Units: times in seconds (``*_time_s`` relative to the video start, ``timestamp``/``start_time`` wall-clock seconds
since the Unix epoch, UTC); boxes and keypoints in frame pixels. Vectors are ``float32`` bytes.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

#: Bumped whenever the schema changes (with a new Alembic revision in ``storage/migrations/versions``); a database
#: with a larger number is refused, an older one is upgraded in place when :data:`UPGRADABLE_VERSIONS` lists it.
SCHEMA_VERSION = 5
UPGRADABLE_VERSIONS = (1, 2, 3, 4)
APP_ID = "reid-app"

#: Video statuses of a finished ingest: ``complete``, or ``damaged`` when more than
#: :data:`DAMAGED_FRACTION` of its frames could not be decoded (the rest is stored and searchable).
FINISHED_STATUSES = ("complete", "damaged")
DAMAGED_FRACTION = 0.05

#: The tables of schema 3, the schema of databases made before Alembic migrations (``storage/migrations``).
SCHEMA3_TABLES = (
    "reid_meta",
    "models",
    "cameras",
    "videos",
    "tracks",
    "sightings",
    "embeddings",
    "camera_overlaps",
    "identities",
    "identity_tracks",
    "pair_feedback",
    "audit_log",
    "identity_labels",
)

#: Columns added to existing tables by each schema version (``ALTER TABLE ... ADD COLUMN``), for in-place upgrades.
ADDED_COLUMNS = {
    3: [
        ("videos", "owner", "VARCHAR(200)"),
        ("videos", "heartbeat_at", "FLOAT"),
        ("videos", "analysed_until_s", "FLOAT"),
        ("videos", "frames_lost", "INTEGER DEFAULT 0"),
        ("tracks", "static", "BOOLEAN DEFAULT 0"),
    ]
}


def utcnow() -> datetime:
    """Current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    """Declarative base of every reid-app table."""


class Meta(Base):
    """Key/value facts about the database: ``app`` = ``reid-app``, ``schema_version``."""

    __tablename__ = "reid_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ReidModel(Base):
    """A re-id model that produced embeddings: name, checksum of its weights, output dimension."""

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("name", "checkpoint_hash"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    checkpoint_hash: Mapped[str] = mapped_column(String(64))
    dims: Mapped[int] = mapped_column(Integer)
    source: Mapped[Optional[str]] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Camera(Base):
    """A camera, named by the user (default: the video file's stem)."""

    __tablename__ = "cameras"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    videos: Mapped[list["Video"]] = relationship(back_populates="camera", cascade="all, delete-orphan")


class Video(Base):
    """One ingested video file of a camera.

    ``status`` is ``ingesting`` until the whole video was analysed and committed, then ``complete`` (or ``damaged``
    when more than 5% of its frames could not be decoded; ``frames_lost`` counts them). An ``ingesting`` row is
    leased by the process writing it: ``owner`` (``host:pid``) and ``heartbeat_at`` (epoch seconds, renewed while
    it works). A row whose owner is dead (Ctrl-C, crash, kill -9) is reclaimed and re-ingested from scratch by the
    next run; a live owner's row is never touched. At most one finished row exists per fingerprint: a forced or
    extending re-ingest replaces the old row in the same transaction that finishes the new one.
    ``analysed_until_s`` is the ``--duration`` the video was analysed to (seconds), NULL for the whole video.
    """

    __tablename__ = "videos"
    id: Mapped[int] = mapped_column(primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    fps: Mapped[float] = mapped_column(Float)
    frame_count: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    duration_s: Mapped[float] = mapped_column(Float)
    start_time: Mapped[float] = mapped_column(Float, default=0.0)
    analysis_fps: Mapped[float] = mapped_column(Float)
    frames_analysed: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="ingesting")
    model_id: Mapped[Optional[int]] = mapped_column(ForeignKey("models.id"), default=None)
    owner: Mapped[Optional[str]] = mapped_column(String(200), default=None)
    heartbeat_at: Mapped[Optional[float]] = mapped_column(Float, default=None)
    analysed_until_s: Mapped[Optional[float]] = mapped_column(Float, default=None)
    frames_lost: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    ingested_at: Mapped[datetime] = mapped_column(default=utcnow)
    camera: Mapped[Camera] = relationship(back_populates="videos")
    tracks: Mapped[list["Track"]] = relationship(
        back_populates="video", cascade="all, delete-orphan", passive_deletes=True
    )


class Track(Base):
    """A tracklet: one person followed by the tracker within one camera's video.

    ``descriptor`` is the quality-weighted mean of the track's sighting embeddings, L2-normalised (``float32 [D]``
    bytes, made by ``descriptor_model_id``), or NULL when none of its sightings was encoded. ``static`` marks a
    track whose box did not move over its life (an empty chair, a coat on a hook): kept out of identities and
    search results unless asked for.
    """

    __tablename__ = "tracks"
    __table_args__ = (UniqueConstraint("video_id", "local_track_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"), index=True)
    local_track_id: Mapped[int] = mapped_column(Integer)
    first_time_s: Mapped[float] = mapped_column(Float)
    last_time_s: Mapped[float] = mapped_column(Float)
    first_frame: Mapped[int] = mapped_column(Integer)
    last_frame: Mapped[int] = mapped_column(Integer)
    num_sightings: Mapped[int] = mapped_column(Integer, default=0)
    num_embeddings: Mapped[int] = mapped_column(Integer, default=0)
    quality_sum: Mapped[float] = mapped_column(Float, default=0.0)
    descriptor: Mapped[Optional[bytes]] = mapped_column(LargeBinary, default=None)
    descriptor_model_id: Mapped[Optional[int]] = mapped_column(ForeignKey("models.id"), default=None)
    static: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    video: Mapped[Video] = relationship(back_populates="tracks")


class Sighting(Base):
    """One tracked person in one analysed frame: box, score, keypoints, time, and a thumbnail when encoded.

    ``keypoints`` is ``float32 [17, 3]`` COCO-17 ``(x, y, confidence)`` bytes or NULL; ``thumbnail`` a small
    JPEG or NULL (only sightings selected for re-id encoding keep one).
    """

    __tablename__ = "sightings"
    __table_args__ = (Index("ix_sightings_video_frame", "video_id", "frame_index"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), index=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"))
    frame_index: Mapped[int] = mapped_column(Integer)
    time_s: Mapped[float] = mapped_column(Float)
    timestamp: Mapped[float] = mapped_column(Float)
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float)
    quality: Mapped[float] = mapped_column(Float, default=0.0)
    keypoints: Mapped[Optional[bytes]] = mapped_column(LargeBinary, default=None)
    thumbnail: Mapped[Optional[bytes]] = mapped_column(LargeBinary, default=None)


class Embedding(Base):
    """A re-id embedding of one sighting by one model: ``float32 [dims]`` bytes, L2-normalised."""

    __tablename__ = "embeddings"
    __table_args__ = (UniqueConstraint("sighting_id", "model_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    sighting_id: Mapped[int] = mapped_column(ForeignKey("sightings.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    dims: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class CameraOverlap(Base):
    """Two cameras marked by the user as seeing a common area, so one person may be in both at the same instant.

    Stored once per pair with ``camera_a_id < camera_b_id``.
    """

    __tablename__ = "camera_overlaps"
    camera_a_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"), primary_key=True)
    camera_b_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"), primary_key=True)


class Identity(Base):
    """A global identity: tracks of one or more cameras believed to show the same person.

    ``confidence`` in ``[0, 1]`` is how alike its member tracks are (see ``pipelines.matching.identities``);
    ``threshold`` the clustering threshold in force when it was made.
    """

    __tablename__ = "identities"
    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    confidence: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IdentityTrack(Base):
    """Membership of a track in an identity; a track belongs to at most one identity."""

    __tablename__ = "identity_tracks"
    identity_id: Mapped[int] = mapped_column(ForeignKey("identities.id", ondelete="CASCADE"), index=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True)


class PairFeedback(Base):
    """A user's verdict on a pair of tracks: ``same`` (confirmed match) or ``different`` (rejected match).

    Stored once per pair with ``track_a_id < track_b_id``; a newer verdict on the same pair replaces the older.
    """

    __tablename__ = "pair_feedback"
    __table_args__ = (UniqueConstraint("track_a_id", "track_b_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    track_a_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), index=True)
    track_b_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), index=True)
    verdict: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    """One audited action: a search or a feedback action, when it happened and its details as JSON text."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    action: Mapped[str] = mapped_column(String(32))
    details: Mapped[str] = mapped_column(Text)


class IdentityLabel(Base):
    """A name and a note an investigator gave an identity (a person of interest). Keyed by identity id, which
    stays with the identity across re-clustering and is never reused, so the label follows the person."""

    __tablename__ = "identity_labels"
    identity_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(String(200))
    note: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class WatchlistEntry(Base):
    """A person of interest: a name and the re-id descriptor live tracks are compared with.

    ``kind`` says where the descriptor came from (``identity``, ``track`` or ``image``) and ``source`` which one
    (the identity or track id, or the image file's path); ``vector`` is ``float32 [dims]`` bytes, L2-normalised, made
    by ``model_id``. An entry stays valid when its identity or track is later deleted (retention): the descriptor is
    its own copy.
    """

    __tablename__ = "watchlist"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(Text)
    note: Mapped[str] = mapped_column(Text, default="")
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Alert(Base):
    """A live track that matched a watchlist entry: when (``timestamp``, wall-clock seconds since the epoch), where
    (camera, track, the sighting that best shows it) and how alike (cosine ``similarity``). ``delivered`` says
    where the alert went (e.g. ``console, webhook 200``). The camera name is kept as text so that the alert
    survives the retention of its footage (track and sighting then become NULL).
    """

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(primary_key=True)
    watchlist_id: Mapped[int] = mapped_column(ForeignKey("watchlist.id", ondelete="CASCADE"), index=True)
    camera: Mapped[str] = mapped_column(String(200))
    track_id: Mapped[Optional[int]] = mapped_column(ForeignKey("tracks.id", ondelete="SET NULL"), index=True)
    sighting_id: Mapped[Optional[int]] = mapped_column(ForeignKey("sightings.id", ondelete="SET NULL"))
    timestamp: Mapped[float] = mapped_column(Float)
    similarity: Mapped[float] = mapped_column(Float)
    delivered: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class RecordedFile(Base):
    """A file reid-app's recorder wrote (a live segment): the only files retention may delete. A file a user put
    into the recordings folder has no row and is never deleted."""

    __tablename__ = "recorded_files"
    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(Text, unique=True)
    camera: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookOutbox(Base):
    """An alert waiting for (or done with) its webhook POST, kept across restarts.

    ``state``: ``queued`` (to be sent at ``next_attempt_at``, wall-clock seconds since the epoch), ``sending`` (a
    POST was under way; if the process died then, it may have arrived and is never sent again: at most once per
    alert), ``delivered``, ``failed`` or ``unknown``. ``outcome`` is what really happened (``200``, ``302 redirect
    not followed``, ``timed out after 5 s``...). The webhook URL itself is never stored (it may hold a password).
    """

    __tablename__ = "webhook_outbox"
    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), unique=True)
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float, default=0.0)
    outcome: Mapped[str] = mapped_column(Text, default="")
