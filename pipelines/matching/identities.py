"""Global identities: tracks of all cameras clustered into people, under physical and user constraints.

Algorithm: constrained average-linkage agglomerative clustering of track descriptors (cosine similarity; the
``mean`` track similarity of ``pipelines.matching.search``, which separated people best on the lab cameras).

1. Must-link: tracks a user confirmed as one person (``pair_feedback`` verdict ``same``) start in one cluster
   (union-find); a confirmation overrides the automatic constraints below, never a user's rejection.
2. Cannot-link between two tracks when
   - the user rejected the pair (verdict ``different``);
   - they are in the same camera and their time ranges overlap (one camera cannot see one person as two tracks
     at once);
   - they are in different cameras, their time ranges overlap, and the two cameras are not marked as overlapping
     (``reid-app cameras --overlap``): one person is not in two places at the same instant.
   Time ranges are wall-clock ``[first, last]`` seconds, inclusive.
3. Repeatedly merge the two clusters of highest average linkage (the mean cosine similarity over all cross
   pairs of their tracks) that contain no cannot-link pair, while that similarity is at least ``threshold``.

The default threshold, :data:`DEFAULT_THRESHOLD` = 0.75, lies in the gap measured on the four lab cameras with
OSNet x0.25 (MSMT17): tracks of one person scored 0.80-0.95, of different people at most 0.71 (a few ambiguous
pairs up to 0.86). Another re-id model may need another threshold (``--threshold``); it is stored with each
identity and reused by re-clustering after feedback.

Confidence of an identity in ``[0, 1]``: for several tracks the mean pairwise similarity of its members (a
confirmed pair counts 1); for a single track, 1 minus its highest similarity to any track it could have joined
(how clearly it stands alone). The constraints and the confidence are written once, in
``pipelines.matching.constraints``.

:func:`cluster_identities` runs it with ``pipelines.matching.linkage.cluster_sparse`` (a heap over a neighbour
graph: every pair up to :data:`EXACT_TRACKS` tracks, each track's 30 nearest beyond; 100,000 tracks in about a
minute on 2 cores). The dense reference implementation (``O(T^2)`` memory, ``O(T^2)`` per merge) it is tested
against lives with the tests (``tests/reference_clustering.py``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from common.errors import UsageError
from pipelines.matching.constraints import cannot_link_row, cohesion, standing_alone
from pipelines.matching.linkage import cluster_sparse
from storage.audit import record
from storage.database import Database
from storage.feedback import DIFFERENT, SAME, load_overlaps, load_verdicts
from storage.identities import (
    add_to_identities,
    identities_of_tracks,
    identity_counts,
    load_identities,
    replace_identities,
    stored_threshold,
)
from storage.model_registry import list_models, model_threshold
from storage.reads import get_tracks
from storage.track_checks import static_track_ids
from storage.vector_index import EmbeddingIndex, TrackTable

DEFAULT_THRESHOLD = 0.75
#: Up to this many tracks clustering compares every pair (exact average linkage); beyond, each track's 30 most
#: similar tracks (``pipelines.matching.linkage``).
EXACT_TRACKS = 500


@dataclass
class ClusteringReport:
    """What a clustering run made: the model, identities (and how many span several cameras), tracks, threshold,
    seconds taken."""

    model_id: int
    identities: int
    multi_camera: int
    tracks: int
    threshold: float
    seconds: float
    #: What the feedback action that triggered this run changed, one line each (empty for plain runs).
    changes: list[str] = field(default_factory=list)
    #: Tracks the action was about (the pair, the merged or split-off tracks), to say where they are now.
    subject_tracks: list[int] = field(default_factory=list)
    #: How a feedback re-clustering changed the identities it touched, one line each (``identity 7: 4 -> 2 tracks
    #: (left: 9, 12)``, ``new identity 31: tracks 9, 12``); every other identity is unchanged.
    identity_changes: list[str] = field(default_factory=list)


def current_threshold(db: Database, model_id: int) -> float:
    """The threshold of the model's stored identities; when it has none, the model's own calibrated threshold
    (recorded at ingest from its checkpoint); else :data:`DEFAULT_THRESHOLD`."""
    stored = stored_threshold(db, model_id)
    if stored is None:
        stored = model_threshold(db, model_id)
    return DEFAULT_THRESHOLD if stored is None else stored


def _without(tracks: TrackTable, excluded: set[int]) -> TrackTable:
    """The table without the ``excluded`` track ids (static tracks are no one's identity)."""
    keep = ~np.isin(tracks.track_ids, np.fromiter(excluded, np.int64, len(excluded)))
    if keep.all():
        return tracks
    kept = TrackTable(
        tracks.track_ids[keep],
        tracks.camera_ids[keep],
        tracks.video_ids[keep],
        tracks.first_timestamps[keep],
        tracks.last_timestamps[keep],
        tracks.descriptors[keep],
    )
    kept.position = {int(t): i for i, t in enumerate(kept.track_ids)}
    return kept


def cluster_identities(
    db: Database,
    model_id: Optional[int] = None,
    threshold: Optional[float] = None,
    reason: str = "on demand",
    around: Optional[Sequence[int]] = None,
) -> ClusteringReport:
    """Cluster all tracks of a model into identities and store them (replacing the model's old identities).

    Args:
        model_id: the re-id model (default: the one with the most embeddings).
        threshold: cosine average-linkage threshold (default: the stored one, else :data:`DEFAULT_THRESHOLD`).
        reason: why, for the audit log (``after ingest``, ``feedback``, ``on demand``).
        around: the tracks a feedback action was about: only the identities holding them are re-clustered (their
            members and these tracks together, under every constraint), every other identity staying exactly as it
            is, so that work on one person never reshuffles another; :attr:`ClusteringReport.identity_changes`
            says what became of the touched ones.

    Raises:
        UsageError: no embeddings, or a threshold outside ``[-1, 1]``.
    """
    started = time.perf_counter()
    models = list_models(db)
    if not models:
        raise UsageError(f"{db.location} holds no embeddings yet; run 'reid-app ingest' first")
    model_id = models[0].id if model_id is None else model_id
    threshold = current_threshold(db, model_id) if threshold is None else float(threshold)
    if not -1.0 <= threshold <= 1.0:
        raise UsageError(f"threshold must be a cosine similarity between -1 and 1, got {threshold}")
    dims = next((m.dims for m in models if m.id == model_id), None)
    if dims is None:
        raise UsageError(f"{db.location} holds no embeddings of model {model_id}")
    replaced, before = None, {}
    if around is not None:
        replaced, tracks, before = _touched_components(db, model_id, around)
        verdicts = load_verdicts(db, tracks.track_ids.tolist())
    else:
        tracks = _without(EmbeddingIndex.load(db, model_id, dims, with_sightings=False).tracks, static_track_ids(db))
        verdicts = load_verdicts(db)
    position = {int(t): i for i, t in enumerate(tracks.track_ids)}
    pairs = [(position.get(v.track_a), position.get(v.track_b), v.verdict) for v in verdicts]
    pairs = [(a, b, verdict) for a, b, verdict in pairs if a is not None and b is not None]
    # exact average linkage (a complete graph) up to EXACT_TRACKS tracks, a sparse neighbour graph beyond
    exact = len(tracks) <= EXACT_TRACKS
    clusters = cluster_sparse(
        tracks.descriptors,
        tracks.first_timestamps,
        tracks.last_timestamps,
        tracks.camera_ids,
        load_overlaps(db),
        threshold,
        must_link=[(a, b) for a, b, verdict in pairs if verdict == SAME],
        rejected=[(a, b) for a, b, verdict in pairs if verdict == DIFFERENT],
        k=max(len(tracks) - 1, 1) if exact else 30,
        min_edge=-1.0 if exact else None,
    )
    stored = [([int(tracks.track_ids[i]) for i in members], confidence) for members, confidence in clusters]
    ids = replace_identities(db, model_id, stored, threshold, replaced)
    if replaced is None:
        multi = sum(len({int(tracks.camera_ids[i]) for i in members}) > 1 for members, _ in clusters)
        count, total = len(clusters), len(tracks)
    else:
        count, multi, total = identity_counts(db, model_id)
    report = ClusteringReport(model_id, count, multi, total, threshold, time.perf_counter() - started)
    if replaced is not None:
        report.identity_changes = identity_changes(before, {i: sorted(m) for i, (m, _) in zip(ids, stored) if i})
    record(
        db,
        "cluster",
        reason=reason if replaced is None else f"{reason} (local)",
        model_id=model_id,
        threshold=threshold,
        identities=count,
        multi_camera=multi,
        tracks=total,
        **({} if replaced is None else {"reclustered_tracks": len(tracks)}),
    )
    return report


def identity_changes(before: dict[int, list[int]], after: dict[int, list[int]]) -> list[str]:
    """Lines saying how identities changed, from ``{identity id: member track ids}`` before and after (unchanged
    identities say nothing)."""
    lines = []
    for ident, members in sorted(after.items()):
        old = before.get(ident)
        if old is None:
            lines.append(f"new identity {ident}: track{'s' if len(members) > 1 else ''} {', '.join(map(str, members))}")
        elif sorted(old) != members:
            left, joined = sorted(set(old) - set(members)), sorted(set(members) - set(old))
            parts = ([f"left: {', '.join(map(str, left))}"] if left else []) + (
                [f"joined: {', '.join(map(str, joined))}"] if joined else []
            )
            lines.append(f"identity {ident}: {len(old)} -> {len(members)} tracks ({'; '.join(parts)})")
    lines += [
        f"identity {ident} dissolved (its tracks {', '.join(map(str, old))} are in the identities above)"
        for ident, old in sorted(before.items())
        if ident not in after
    ]
    return lines


def _touched_components(
    db: Database, model_id: int, around: Sequence[int]
) -> tuple[list[int], TrackTable, dict[int, list[int]]]:
    """The identities holding any of ``around``, the table of their member tracks (and ``around`` itself), and
    their members as they are now."""
    with db.snapshot() as session:
        holding = identities_of_tracks(db, around)
        identities = load_identities(db, model_id, set(holding.values()), session=session)
        ids = sorted({int(t) for t in around} | {t for i in identities for t in i.track_ids})
        infos = get_tracks(db, ids, session)
    static = static_track_ids(db)
    rows = [infos[t] for t in ids if t in infos and infos[t].descriptor is not None and t not in static]
    table = TrackTable(
        np.array([r.id for r in rows], np.int64),
        np.array([r.camera_id for r in rows], np.int64),
        np.zeros(len(rows), np.int64),
        np.array([r.first_timestamp for r in rows], np.float64),
        np.array([r.last_timestamp for r in rows], np.float64),
        np.stack([r.descriptor for r in rows]).astype(np.float32) if rows else np.zeros((0, 1), np.float32),
    )
    table.position = {int(t): i for i, t in enumerate(table.track_ids)}
    return [i.id for i in identities], table, {i.id: sorted(i.track_ids) for i in identities}


@dataclass
class AssignmentReport:
    """What :func:`assign_new_tracks` did: tracks assigned, of them joined to an existing identity, new identities
    made, seconds taken."""

    tracks: int
    joined: int
    new_identities: int
    seconds: float


def assign_new_tracks(
    db: Database, model_id: Optional[int] = None, threshold: Optional[float] = None
) -> AssignmentReport:
    """Incremental matching: give every track that has a descriptor but no identity yet one, without re-clustering
    the others (live footage, where a full clustering after every segment would cost ``O(T^3)``).

    New tracks are taken in time order. A track confirmed by a user as the same person as a member joins that
    member's identity. Otherwise it joins the identity of highest average linkage (mean cosine similarity to its
    members, the criterion of the full clustering) that has no cannot-link member (module docstring, step 2:
    simultaneous in one camera, simultaneous in two cameras not marked overlapping, or rejected by a user), when
    that linkage is at least ``threshold``; else it starts a new identity, which later new tracks may join.
    Confidences: ``pipelines.matching.constraints``. A later full :func:`cluster_identities` may regroup them.

    Args:
        model_id: the re-id model (default: the one with the most embeddings).
        threshold: cosine threshold (default :func:`current_threshold`).

    Cost: ``O(T + m^2)`` per new track for ``T`` tracks and an identity of ``m`` members.
    """
    started = time.perf_counter()
    models = list_models(db)
    if not models:
        return AssignmentReport(0, 0, 0, 0.0)
    model_id = models[0].id if model_id is None else model_id
    dims = next((m.dims for m in models if m.id == model_id), None)
    if dims is None:
        return AssignmentReport(0, 0, 0, 0.0)
    threshold = current_threshold(db, model_id) if threshold is None else float(threshold)
    tracks = _without(EmbeddingIndex.load(db, model_id, dims, with_sightings=False).tracks, static_track_ids(db))
    label = np.full(len(tracks), -1, np.int64)  # identity of each track (new ones: negative temporary keys)
    for identity in load_identities(db, model_id):
        for t in identity.track_ids:
            if t in tracks.position:
                label[tracks.position[t]] = identity.id
    new = np.flatnonzero(label == -1)
    if not len(new):
        return AssignmentReport(0, 0, 0, time.perf_counter() - started)
    new = new[np.argsort(tracks.first_timestamps[new], kind="stable")]
    overlaps = load_overlaps(db)
    verdicts = load_verdicts(db, [int(tracks.track_ids[i]) for i in new])
    descriptors = tracks.descriptors.astype(np.float64)
    next_key, joined = -2, 0
    confidences: dict[int, float] = {}
    for i in new:
        similarity = descriptors @ descriptors[i]
        forbidden = cannot_link_row(tracks, i, overlaps)
        same, different = _verdict_partners(tracks, int(tracks.track_ids[i]), verdicts)
        forbidden[different] = True
        chosen = next((int(label[j]) for j in same if label[j] != -1), None)
        if chosen is None:
            labelled = label != -1
            labels, inverse = np.unique(label[labelled], return_inverse=True)
            if len(labels):
                sums = np.bincount(inverse, weights=similarity[labelled], minlength=len(labels))
                counts = np.bincount(inverse, minlength=len(labels))
                blocked = (
                    np.bincount(inverse, weights=forbidden[labelled].astype(np.float64), minlength=len(labels)) > 0
                )
                linkage = np.where(blocked, -np.inf, sums / np.maximum(counts, 1))
                best = int(np.argmax(linkage))
                if linkage[best] >= threshold:
                    chosen = int(labels[best])
        if chosen is None:
            label[i], next_key = next_key, next_key - 1
            others = np.where(forbidden, -np.inf, similarity)
            others[i] = -np.inf
            confidences[int(label[i])] = standing_alone(float(others.max()) if len(others) > 1 else -np.inf)
        else:
            label[i] = chosen
            joined += 1
            members = np.flatnonzero(label == chosen)
            confidences[chosen] = cohesion(descriptors[members] @ descriptors[members].T)
    keys = sorted({int(label[i]) for i in new})
    assignments = [
        (key if key > 0 else None, [int(tracks.track_ids[i]) for i in new if label[i] == key], confidences[key])
        for key in keys
    ]
    add_to_identities(db, model_id, assignments, threshold)
    made = sum(key < 0 for key in keys)
    record(
        db,
        "cluster",
        reason="incremental",
        model_id=model_id,
        threshold=threshold,
        tracks=len(new),
        joined=joined,
        new_identities=made,
    )
    return AssignmentReport(len(new), joined, made, time.perf_counter() - started)


def identities_after_ingest(db: Database) -> Optional[ClusteringReport]:
    """Give the tracks an ingest added identities: incrementally (:func:`assign_new_tracks`) when the model already
    has identities, else by a full :func:`cluster_identities`. None when the database holds no embeddings."""
    models = list_models(db)
    if not models:
        return None
    model_id = models[0].id
    if stored_threshold(db, model_id) is None:
        return cluster_identities(db, model_id, reason="after ingest")
    started = time.perf_counter()
    assigned = assign_new_tracks(db, model_id)
    with db.snapshot() as session:
        identities = load_identities(db, model_id, session=session)
        cameras = {
            t: info.camera_id
            for t, info in get_tracks(db, [t for i in identities for t in i.track_ids], session).items()
        }
    multi = sum(len({cameras[t] for t in i.track_ids if t in cameras}) > 1 for i in identities)
    return ClusteringReport(
        model_id,
        len(identities),
        multi,
        sum(len(i.track_ids) for i in identities),
        current_threshold(db, model_id),
        time.perf_counter() - started,
        changes=[
            f"{assigned.tracks} new tracks: {assigned.joined} joined an identity, "
            f"{assigned.new_identities} new identities"
        ]
        if assigned.tracks
        else [],
    )


def _verdict_partners(tracks: TrackTable, track_id: int, verdicts) -> tuple[list[int], list[int]]:
    """Positions of the tracks a user confirmed as (``same``) and rejected as (``different``) ``track_id``."""
    same, different = [], []
    for v in verdicts:
        other = v.track_b if v.track_a == track_id else v.track_a if v.track_b == track_id else None
        if other is None or other not in tracks.position:
            continue
        (same if v.verdict == SAME else different).append(tracks.position[other])
    return same, different


def join_ranges(ranges: list[tuple[float, float, int]], gap_s: float) -> list[tuple[float, float, list[int]]]:
    """Join ``(start, end, track)`` ranges (seconds) that overlap or are less than ``gap_s`` apart.

    Returns:
        ``(start, end, tracks)`` per joined range, in time order.
    """
    joined: list[tuple[float, float, list[int]]] = []
    for start, end, track in sorted(ranges):
        if joined and start - joined[-1][1] < gap_s:
            s, e, tracks = joined[-1]
            joined[-1] = (s, max(e, end), tracks + [track])
        else:
            joined.append((start, end, [track]))
    return joined


@dataclass
class IdentitySummary:
    """An identity for lists and timelines.

    Attributes:
        id, confidence, track_ids: as stored.
        cameras: camera name -> joined ``(start, end, track ids)`` time ranges, seconds since the epoch.
        first_timestamp, last_timestamp: when the person is first and last seen anywhere.
    """

    id: int
    confidence: float
    track_ids: list[int]
    cameras: dict[str, list[tuple[float, float, list[int]]]]
    first_timestamp: float
    last_timestamp: float


def summarise_identities(
    db: Database, model_id: Optional[int] = None, join_gap_s: float = 2.0
) -> list[IdentitySummary]:
    """Every stored identity (of one model) with its cameras and time ranges, most cameras first. Identities and
    their tracks are read in one snapshot, so a re-clustering or re-ingest committed meanwhile is seen whole or
    not at all."""
    with db.snapshot() as session:
        identities = load_identities(db, model_id, session=session)
        tracks = get_tracks(db, [t for i in identities for t in i.track_ids], session)
    identities = [i for i in identities if i.track_ids]
    out = []
    for identity in identities:
        per_camera: dict[str, list[tuple[float, float, int]]] = {}
        for t in identity.track_ids:
            info = tracks[t]
            per_camera.setdefault(info.camera, []).append((info.first_timestamp, info.last_timestamp, t))
        cameras = {c: join_ranges(r, join_gap_s) for c, r in sorted(per_camera.items())}
        times = [tracks[t].first_timestamp for t in identity.track_ids]
        ends = [tracks[t].last_timestamp for t in identity.track_ids]
        out.append(
            IdentitySummary(identity.id, identity.confidence, identity.track_ids, cameras, min(times), max(ends))
        )
    return sorted(out, key=lambda s: (-len(s.cameras), -len(s.track_ids), s.id))
