"""What an evidence export reads (``pipelines.evidence.export``): the videos of an identity's tracks, every sighting
of those tracks in frame order, and where the other people of those videos were (the bystanders to blur). Plain
dataclasses; no ORM object leaves the session."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from sqlalchemy import select

from storage.database import Database
from storage.schema import Sighting, Track, Video

#: A box in frame pixels: ``(x1, y1, x2, y2)``.
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class VideoFacts:
    """A stored video as an export needs it: id, file path, frames per second (0 when unknown), frame count, and
    its wall-clock start (seconds since the epoch; 0 when unknown)."""

    id: int
    path: str
    fps: float
    frame_count: int
    start_time: float


@dataclass(frozen=True)
class TrackSighting:
    """One sighting of a track: id, frame index, seconds into its video, box (frame pixels) and JPEG thumbnail
    (None when it was not encoded)."""

    id: int
    frame_index: int
    time_s: float
    box: Box
    thumbnail: Optional[bytes]


def videos_of_tracks(db: Database, track_ids: Sequence[int]) -> dict[int, VideoFacts]:
    """Track id -> the video it was seen in (tracks that do not exist are left out)."""
    with db.snapshot() as session:
        rows = session.execute(
            select(Track.id, Video.id, Video.path, Video.fps, Video.frame_count, Video.start_time)
            .join(Video, Video.id == Track.video_id)
            .where(Track.id.in_(list(track_ids)))
        ).all()
    return {
        track: VideoFacts(video, path, float(fps or 0.0), int(frames or 0), float(start or 0.0))
        for track, video, path, fps, frames, start in rows
    }


def sightings_of_tracks(db: Database, track_ids: Sequence[int]) -> dict[int, list[TrackSighting]]:
    """Track id -> its sightings in frame order (every asked track is a key, possibly with no sightings)."""
    out: dict[int, list[TrackSighting]] = {int(t): [] for t in track_ids}
    with db.snapshot() as session:
        rows = session.execute(
            select(
                Sighting.track_id,
                Sighting.id,
                Sighting.frame_index,
                Sighting.time_s,
                Sighting.x1,
                Sighting.y1,
                Sighting.x2,
                Sighting.y2,
                Sighting.thumbnail,
            )
            .where(Sighting.track_id.in_(list(out)))
            .order_by(Sighting.track_id, Sighting.frame_index)
        )
        for track, sid, frame, time_s, x1, y1, x2, y2, thumb in rows:
            out[track].append(TrackSighting(sid, frame, time_s, (x1, y1, x2, y2), thumb))
    return out


def bystander_boxes(db: Database, video_id: int, excluded: Sequence[int]) -> dict[int, list[tuple[int, Box]]]:
    """The boxes of every non-static track of video ``video_id`` but the ``excluded`` ones: track id ->
    ``[(frame index, box)]``."""
    tracks: dict[int, list[tuple[int, Box]]] = {}
    with db.snapshot() as session:
        rows = session.execute(
            select(Sighting.track_id, Sighting.frame_index, Sighting.x1, Sighting.y1, Sighting.x2, Sighting.y2)
            .join(Track, Track.id == Sighting.track_id)
            .where(Sighting.video_id == video_id, Sighting.track_id.not_in(list(excluded)), Track.static.is_(False))
        )
        for track, frame, x1, y1, x2, y2 in rows:
            tracks.setdefault(int(track), []).append((int(frame), (x1, y1, x2, y2)))
    return tracks
