"""Browsing queries for players and lists: cameras with their videos, one video's sightings for drawing, and
the best thumbnail of each track."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
from sqlalchemy import func, select

from storage.database import Database
from storage.schema import FINISHED_STATUSES, Camera, Sighting, Track, Video

#: COCO-17 keypoints are stored as ``float32 [17, 3]`` (x, y in frame pixels, confidence in [0, 1]).
NUM_KEYPOINTS = 17


@dataclass
class VideoEntry:
    """A stored video of a camera.

    Attributes:
        id, camera_id: database ids. path: the ingested file (it may have moved since).
        fps: frames per second. frame_count: frames in the file. width, height: frame size in pixels.
        duration_s: seconds. start_time: wall-clock time of frame 0, seconds since the epoch.
        analysis_fps: frames analysed per second at ingest. frames_analysed: analysed so far.
        status: ``complete``, ``damaged`` (finished; some frames could not be decoded) or ``ingesting``
            (unfinished, interrupted, or being ingested now).
        frames_lost: frames that could not be decoded.
    """

    id: int
    camera_id: int
    path: str
    fps: float
    frame_count: int
    width: int
    height: int
    duration_s: float
    start_time: float
    analysis_fps: float
    frames_analysed: int
    status: str
    frames_lost: int = 0

    @property
    def finished(self) -> bool:
        """The ingest of this video ended (``complete`` or ``damaged``)."""
        return self.status in FINISHED_STATUSES

    @property
    def end_time(self) -> float:
        """Wall-clock time of the video's end, seconds since the epoch."""
        return self.start_time + self.duration_s

    def frame_at(self, timestamp: float) -> int:
        """The frame shown at wall-clock ``timestamp`` (seconds since the epoch), clamped to the video."""
        # 1e-3 frame of slack: wall-clock times near 1.7e9 s carry ~1e-7 s of rounding, i.e. ~1e-5 frame
        index = int(np.floor((timestamp - self.start_time) * self.fps + 1e-3))
        return int(np.clip(index, 0, max(0, self.frame_count - 1)))

    def time_of(self, frame_index: int) -> float:
        """Wall-clock time of ``frame_index``, seconds since the epoch."""
        return self.start_time + frame_index / self.fps


@dataclass
class CameraEntry:
    """A camera with its videos (by start time) and number of tracks."""

    id: int
    name: str
    videos: list[VideoEntry] = field(default_factory=list)
    tracks: int = 0

    @property
    def duration_s(self) -> float:
        """Seconds of footage over all videos."""
        return sum(v.duration_s for v in self.videos)

    @property
    def state(self) -> str:
        """``complete``, ``incomplete`` (a video is unfinished) or ``empty``."""
        if not self.videos:
            return "empty"
        return "complete" if all(v.finished for v in self.videos) else "incomplete"

    def video_at(self, timestamp: float) -> Optional[VideoEntry]:
        """The video covering wall-clock ``timestamp`` (seconds since the epoch), or None."""
        for video in self.videos:
            if video.start_time <= timestamp < video.end_time:
                return video
        return None


def list_cameras(db: Database) -> list[CameraEntry]:
    """Every camera by name, with its videos by start time and its track count."""
    with db.session() as session:
        cameras = {c.id: CameraEntry(c.id, c.name) for c in session.scalars(select(Camera).order_by(Camera.name))}
        for v in session.scalars(select(Video).order_by(Video.start_time, Video.id)):
            cameras[v.camera_id].videos.append(
                VideoEntry(
                    v.id,
                    v.camera_id,
                    v.path,
                    v.fps,
                    v.frame_count,
                    v.width,
                    v.height,
                    v.duration_s,
                    v.start_time,
                    v.analysis_fps,
                    v.frames_analysed,
                    v.status,
                    v.frames_lost or 0,
                )
            )
        for camera_id, count in session.execute(select(Track.camera_id, func.count()).group_by(Track.camera_id)):
            cameras[camera_id].tracks = count
    return list(cameras.values())


@dataclass
class VideoSightings:
    """All sightings of one video, sorted by frame, as arrays for drawing and hit-testing.

    Attributes:
        video_id: the video.
        sighting_ids, track_ids, local_track_ids: ``int64 [N]``.
        frame_indices: ``int64 [N]``, ascending.
        boxes: ``float32 [N, 4]`` ``(x1, y1, x2, y2)`` in frame pixels.
        keypoints: ``float32 [N, 17, 3]`` COCO-17 ``(x, y, confidence)``; confidence 0 where a sighting has none.
        hold_frames: a sighting stays drawn this many frames after its own (one analysis period).
    """

    video_id: int
    sighting_ids: np.ndarray
    track_ids: np.ndarray
    local_track_ids: np.ndarray
    frame_indices: np.ndarray
    boxes: np.ndarray
    keypoints: np.ndarray
    hold_frames: int

    def __len__(self) -> int:
        return len(self.sighting_ids)

    def rows_at(self, frame_index: int) -> np.ndarray:
        """Row indices of the sightings drawn at ``frame_index``: those of the latest analysed frame at or before
        it, when no more than :attr:`hold_frames` back."""
        end = int(np.searchsorted(self.frame_indices, frame_index, side="right"))
        if end == 0:
            return np.empty(0, np.int64)
        shown = int(self.frame_indices[end - 1])
        if frame_index - shown > self.hold_frames:
            return np.empty(0, np.int64)
        start = int(np.searchsorted(self.frame_indices, shown, side="left"))
        return np.arange(start, end)


def video_sightings(db: Database, video_id: int) -> VideoSightings:
    """The sightings of video ``video_id`` (empty arrays for an unknown video)."""
    with db.session() as session:
        video = session.get(Video, video_id)
        rows = session.execute(
            select(
                Sighting.id,
                Sighting.track_id,
                Track.local_track_id,
                Sighting.frame_index,
                Sighting.x1,
                Sighting.y1,
                Sighting.x2,
                Sighting.y2,
                Sighting.keypoints,
            )
            .join(Track, Sighting.track_id == Track.id)
            .where(Sighting.video_id == video_id)
            .order_by(Sighting.frame_index, Sighting.id)
        ).all()
    n = len(rows)
    keypoints = np.zeros((n, NUM_KEYPOINTS, 3), np.float32)
    for i, row in enumerate(rows):
        if row.keypoints is not None:
            values = np.frombuffer(row.keypoints, dtype="<f4")
            if values.size == NUM_KEYPOINTS * 3:
                keypoints[i] = values.reshape(NUM_KEYPOINTS, 3)
    hold = 0
    if video is not None and video.analysis_fps > 0:
        hold = max(0, int(round(video.fps / min(video.analysis_fps, video.fps))) - 1)
    return VideoSightings(
        video_id=video_id,
        sighting_ids=np.array([r.id for r in rows], np.int64),
        track_ids=np.array([r.track_id for r in rows], np.int64),
        local_track_ids=np.array([r.local_track_id for r in rows], np.int64),
        frame_indices=np.array([r.frame_index for r in rows], np.int64),
        boxes=np.array([[r.x1, r.y1, r.x2, r.y2] for r in rows], np.float32).reshape(n, 4),
        keypoints=keypoints,
        hold_frames=hold,
    )


def best_thumbnails(db: Database, track_ids: Sequence[int]) -> dict[int, tuple[int, bytes]]:
    """Track id -> (sighting id, JPEG bytes) of its highest-quality sighting that has a thumbnail (the first such
    sighting on a tie); tracks without one are absent. Only the chosen thumbnails are read."""
    ids = [int(t) for t in track_ids]
    if not ids:
        return {}
    rank = func.row_number().over(partition_by=Sighting.track_id, order_by=(Sighting.quality.desc(), Sighting.id))
    ranked = (
        select(Sighting.track_id, Sighting.id, rank.label("rank"))
        .where(Sighting.track_id.in_(ids), Sighting.thumbnail.is_not(None))
        .subquery()
    )
    with db.session() as session:
        chosen = select(ranked.c.id).where(ranked.c.rank == 1)
        rows = session.execute(
            select(Sighting.track_id, Sighting.id, Sighting.thumbnail).where(Sighting.id.in_(chosen))
        ).all()
    return {track_id: (sighting_id, thumbnail) for track_id, sighting_id, thumbnail in rows}
