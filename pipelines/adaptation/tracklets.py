"""The tracklets of a site as training data without labels (Li, Zhu, Gong, "Unsupervised Person Re-identification by
Deep Learning Tracklet Association", ECCV 2018, Sec. 3.1: per-camera tracklet discrimination).

Within one camera a tracklet is one person, so each tracklet is a class of its camera's classifier. Two tracklets
that cannot be one person (``pipelines.matching.constraints``: seen at the same moment on one camera, or on two
cameras not marked overlapping) are negatives, as is every pair an investigator rejected; every pair an investigator
confirmed is a positive. Static tracks (an empty chair) are no one and left out, and so are tracks with fewer than
``min_sightings`` encoded sightings. Each tracklet keeps up to ``samples`` of its encoded sightings, evenly spread
over its life, whose crops are read from the source footage at the stored boxes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from pipelines.ingest.sampling import evenly_spaced
from pipelines.matching.constraints import cannot_link
from storage.database import Database
from storage.evidence_reads import videos_of_tracks
from storage.feedback import DIFFERENT, SAME, load_overlaps, load_verdicts
from storage.model_registry import list_models
from storage.model_versions import PendingSighting, encoded_sightings
from storage.track_checks import static_track_ids
from storage.vector_index import EmbeddingIndex


@dataclass(frozen=True)
class Tracklet:
    """One tracklet as a class: its track, its camera, its class index within that camera's classifier, its
    wall-clock time range (seconds since the epoch), its video file, and the sightings sampled from it."""

    track_id: int
    camera_id: int
    camera_class: int
    first_timestamp: float
    last_timestamp: float
    video_path: str
    sightings: tuple[PendingSighting, ...]


@dataclass
class TrackletSet:
    """A site's tracklets and the pairs it knows about.

    Attributes:
        model_id: the re-id model whose descriptors chose the tracks.
        tracklets: in camera order, then track id.
        classes: camera id -> number of classes of its classifier (its tracklets).
        negatives: index pairs ``(i, j)``, ``i < j``, of tracklets that are not one person.
        positives: index pairs ``(i, j)``, ``i < j``, an investigator confirmed as one person.
        rejected: the pairs of :attr:`negatives` an investigator rejected (the rest the site's rules gave).
    """

    model_id: int
    tracklets: list[Tracklet] = field(default_factory=list)
    classes: dict[int, int] = field(default_factory=dict)
    negatives: set[tuple[int, int]] = field(default_factory=set)
    positives: set[tuple[int, int]] = field(default_factory=set)
    rejected: set[tuple[int, int]] = field(default_factory=set)

    def index_of(self, track_id: int) -> int:
        """The position of track ``track_id`` in :attr:`tracklets` (``KeyError`` when it is not one)."""
        return self.positions[track_id]

    @cached_property
    def positions(self) -> dict[int, int]:
        """Track id -> position in :attr:`tracklets` (made once, when first asked)."""
        return {t.track_id: i for i, t in enumerate(self.tracklets)}


def site_tracklets(
    db: Database,
    model_id: int | None = None,
    samples: int = 8,
    min_sightings: int = 2,
    max_tracklets: int | None = None,
) -> TrackletSet:
    """The tracklets of ``db`` encoded by ``model_id`` (default: the model with the most embeddings).

    Args:
        samples: encoded sightings kept per tracklet, evenly spaced over its life.
        min_sightings: fewer encoded sightings than this and a track is left out (too little to learn from).
        max_tracklets: keep at most this many, those with the most encoded sightings (None: all).

    Returns:
        The :class:`TrackletSet` (empty when the database holds no embeddings).
    """
    models = list_models(db)
    if not models:
        return TrackletSet(0)
    model = models[0] if model_id is None else next((m for m in models if m.id == model_id), None)
    if model is None:
        return TrackletSet(int(model_id))
    table = EmbeddingIndex.load(db, model.id, model.dims, with_sightings=False).tracks
    static = static_track_ids(db)
    encoded = encoded_sightings(db, model.id, [int(t) for t in table.track_ids if int(t) not in static])
    keep = np.array([int(t) in encoded and len(encoded[int(t)]) >= min_sightings for t in table.track_ids], bool)
    if max_tracklets is not None and keep.sum() > max_tracklets:
        richest = sorted(np.flatnonzero(keep), key=lambda i: (-len(encoded[int(table.track_ids[i])]), i))
        keep[:] = False
        keep[richest[:max_tracklets]] = True
    order = sorted(np.flatnonzero(keep), key=lambda i: (int(table.camera_ids[i]), int(table.track_ids[i])))
    videos = videos_of_tracks(db, [int(table.track_ids[i]) for i in order])
    out = TrackletSet(model.id)
    for i in order:
        track, camera = int(table.track_ids[i]), int(table.camera_ids[i])
        rows = encoded[track]
        picked = tuple(rows[k] for k in evenly_spaced(len(rows), samples))
        out.tracklets.append(
            Tracklet(
                track,
                camera,
                out.classes.get(camera, 0),
                float(table.first_timestamps[i]),
                float(table.last_timestamps[i]),
                videos[track].path,
                picked,
            )
        )
        out.classes[camera] = out.classes.get(camera, 0) + 1
    if not out.tracklets:
        return out
    forbidden = np.triu(cannot_link(_subtable(table, order), load_overlaps(db)), 1)
    out.negatives = {(int(a), int(b)) for a, b in zip(*np.nonzero(forbidden))}
    position = out.positions
    for verdict in load_verdicts(db, list(position)):
        a, b = position.get(verdict.track_a), position.get(verdict.track_b)
        if a is None or b is None:
            continue
        pair = (min(a, b), max(a, b))
        if verdict.verdict == DIFFERENT:
            out.negatives.add(pair)
            out.rejected.add(pair)
        elif verdict.verdict == SAME:
            out.positives.add(pair)
    out.negatives -= out.positives  # a confirmation overrides the automatic rule (never a rejection: not both)
    return out


def _subtable(table, rows):
    """The rows ``rows`` of a ``storage.vector_index.TrackTable``, in that order."""
    rows = np.asarray(rows, np.int64)
    return replace(
        table,
        track_ids=table.track_ids[rows],
        camera_ids=table.camera_ids[rows],
        video_ids=table.video_ids[rows],
        first_timestamps=table.first_timestamps[rows],
        last_timestamps=table.last_timestamps[rows],
        descriptors=table.descriptors[rows],
        position={int(t): n for n, t in enumerate(table.track_ids[rows])},
    )
