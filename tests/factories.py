"""Synthetic databases for domain tests: cameras, videos, tracks, sightings and embeddings written through the real
storage code (``storage.writer.VideoWriter``), with no video, no network and no weights from ``../shared``.

:func:`build_site` makes a small multi-camera site whose ground truth is known: each person has a unit "appearance"
vector, and every track of that person carries embeddings near it (cosine about 0.9 to it), while different people
are near-orthogonal. Search, feedback, identities, watchlist and evidence rules can then be tested in
milliseconds; a few end-to-end tests keep the real 4-camera ingest (``lab4_db``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import av
import numpy as np
from sqlalchemy import select, text

from common.types import Detection, Observation
from storage.database import Database
from storage.model_registry import get_or_create_model
from storage.reads import get_tracks
from storage.schema import Track
from storage.videos import VideoInfo, begin_video
from storage.writer import TrackUpdate, VideoWriter

#: When the synthetic site's videos start (seconds since the epoch: 2023-11-14 22:13:20 UTC).
SITE_START = 1_700_000_000.0


def video_info(
    fingerprint: str = "f" * 64, camera: str = "cam0", duration_s: float = 10.0, start_time: float = SITE_START
) -> VideoInfo:
    """A 640x480, 10 frames/s video of ``duration_s`` seconds on ``camera`` starting at ``start_time``."""
    return VideoInfo(
        camera=camera,
        path=f"/videos/{camera}.mp4",
        fingerprint=fingerprint,
        fps=10.0,
        frame_count=int(duration_s * 10),
        width=640,
        height=480,
        duration_s=duration_s,
        start_time=start_time,
        analysis_fps=5.0,
    )


def observation(track: int, frame: int, quality: float, vector=None, camera: str = "cam0") -> Observation:
    """An observation of ``track`` at ``frame`` (10 frames/s) with random COCO-17 keypoints; with ``vector`` given it
    is selected for encoding (a blank crop, part boxes and a JPEG-looking thumbnail)."""
    keypoints = np.random.default_rng(frame).random((17, 3)).astype(np.float32)
    obs = Observation(
        camera=camera,
        frame_index=frame,
        time_s=frame / 10.0,
        detection=Detection(track, np.array([10, 20, 60, 140], np.float32), 0.9, keypoints),
        quality=quality,
    )
    if vector is not None:
        obs.crop = np.zeros((120, 50, 3), np.uint8)
        obs.part_boxes = np.zeros((4, 4), np.float32)
        obs.thumbnail = b"\xff\xd8jpeg"
    return obs


def ingest_tracks(db: Database, model: int, fingerprint: str, camera: str, tracks, finish: bool = True) -> int:
    """One video of ``camera`` holding ``tracks`` (local ids), three frames each with random unit 3-d embeddings;
    returns its video id (left ``ingesting`` when not ``finish``)."""
    video = begin_video(db, video_info(fingerprint * 64, camera), model)
    writer = VideoWriter(db, video, model, start_time=SITE_START)
    rng = np.random.default_rng(len(fingerprint) + ord(fingerprint[0]))
    for frame in range(3):
        obs = [observation(t, frame, 0.5, np.ones(3)) for t in tracks]
        vectors = rng.standard_normal((len(tracks), 3)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        writer.write(obs, vectors, frame + 1)
    if finish:
        writer.finish(3)
    return video


@dataclass
class SyntheticSite:
    """What :func:`build_site` wrote.

    Attributes:
        model_id: the ``models`` row of the embeddings. dims: their size.
        person_of: database track id -> person index (the ground truth).
        camera_of: database track id -> camera name.
        appearance: ``float32 [people, dims]`` unit vector of each person.
    """

    model_id: int
    dims: int
    person_of: dict[int, int] = field(default_factory=dict)
    camera_of: dict[int, str] = field(default_factory=dict)
    appearance: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))

    def tracks_of(self, person: int) -> list[int]:
        """The track ids of ``person``, by camera name then id."""
        return sorted((t for t, p in self.person_of.items() if p == person), key=lambda t: (self.camera_of[t], t))


def build_site(
    db: Database,
    people: int = 4,
    cameras: int = 2,
    dims: int = 32,
    frames_per_track: int = 12,
    noise: float = 0.1,
    seed: int = 0,
    together: tuple[tuple[int, ...], ...] = (),
    walk_s: float = 0.0,
) -> SyntheticSite:
    """Write a site where every person walks through every camera once, one after another.

    On each camera, person ``p`` is seen in time slot ``p`` (from second ``2 * slot``) for ``frames_per_track``
    frames (0.1 s apart), as one track; the people of a group in ``together`` share the slot of the group's first
    (they walk together: seen at the same moment on one camera). Camera ``c``'s video starts ``c * walk_s`` seconds
    after the first: with ``walk_s`` 0 the same person is seen at the same moment on every camera (overlapping
    views: give the cameras an overlap with ``storage.feedback.set_overlap`` before clustering); with ``walk_s``
    beyond ``2 * people`` seconds, people walk from one camera to the next. Each sighting's embedding is the
    person's appearance plus Gaussian ``noise`` per dimension, L2-normalised: with the defaults two tracks of one
    person score about 0.95, two people about 0 +- 0.2.

    Returns:
        The :class:`SyntheticSite` with the ground truth.
    """
    rng = np.random.default_rng(seed)
    appearance = rng.standard_normal((people, dims)).astype(np.float32)
    appearance /= np.linalg.norm(appearance, axis=1, keepdims=True)
    slot = list(range(people))
    for group in together:
        for p in group:
            slot[p] = slot[group[0]]
    model_id = get_or_create_model(db, "synthetic", f"{seed:064x}", dims)
    site = SyntheticSite(model_id, dims, appearance=appearance)
    for c in range(cameras):
        camera = f"cam{c}"
        start = SITE_START + c * walk_s
        info = video_info(f"{seed:02x}{c:02x}".ljust(64, "s"), camera, 2.0 * people + 2, start)
        video = begin_video(db, info, model_id)
        writer = VideoWriter(db, video, model_id, start_time=start)
        frames = sorted((20 * slot[p] + k, p) for p in range(people) for k in range(frames_per_track))
        for frame, p in frames:
            vector = appearance[p] + noise * rng.standard_normal(dims).astype(np.float32)
            vector /= np.linalg.norm(vector)
            writer.write([observation(p + 1, frame, 0.8, vector, camera)], vector[None], frame + 1)
        writer.finish(20 * people)
        for track_id, local in _track_ids(db, video).items():
            site.person_of[track_id] = local - 1
            site.camera_of[track_id] = camera
    return site


def _track_ids(db: Database, video: int) -> dict[int, int]:
    """Database track id -> local track id of a video."""
    with db.session() as session:
        rows = session.execute(select(Track.id, Track.local_track_id).where(Track.video_id == video)).all()
    return {track_id: local for track_id, local in rows}


def track_update(db: Database, track_id: int, timestamp: float, num_embeddings: int = 5) -> TrackUpdate:
    """A live update of stored track ``track_id`` (its descriptor, as the watch would send it) at ``timestamp``."""
    track = get_tracks(db, [track_id])[track_id]
    return TrackUpdate(track_id, track.local_track_id, track.descriptor, num_embeddings, 1, timestamp)


def two_people(db: Database) -> tuple[int, int, int]:
    """A watched track, the most alike track of another camera (the same person: above 0.85) and a track of
    someone else (below 0.65), found by descriptor similarity (works on a real ingest and a synthetic site)."""
    with db.session() as session:
        ids = [t for (t,) in session.execute(text("SELECT id FROM tracks WHERE num_embeddings >= 5"))]
    tracks = get_tracks(db, ids)
    pairs = [
        (float(a.descriptor @ b.descriptor), a.id, b.id)
        for a in tracks.values()
        for b in tracks.values()
        if a.camera != b.camera and a.id < b.id
    ]
    similarity, watched, same = max(pairs)
    assert similarity > 0.85
    other = next(t.id for t in tracks.values() if float(t.descriptor @ tracks[watched].descriptor) < 0.65)
    return watched, same, other


def make_zero_frame_video(path):
    """An MP4 container with a video stream but no frames."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
    return path


def make_truncated_streamable_copy(src, path):
    """First half of ``src`` remuxed with its index at the front, as a recorder cut off mid-write leaves it."""
    full = path.with_name("full_" + path.name)
    with av.open(str(src)) as inp, av.open(str(full), "w", options={"movflags": "faststart"}) as out:
        s_in = inp.streams.video[0]
        s_out = out.add_stream_from_template(s_in)
        for packet in inp.demux(s_in):
            if packet.dts is None:
                continue
            packet.stream = s_out
            out.mux(packet)
    data = full.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


#: BGR colour each synthetic person wears in :func:`write_site_footage` (index = person).
PERSON_COLOURS = np.array(
    [[40, 40, 220], [40, 200, 40], [220, 60, 40], [30, 210, 230], [200, 40, 200], [230, 230, 40], [120, 60, 20]],
    np.uint8,
)


def write_site_footage(db: Database, folder, people: int) -> list[str]:
    """Real footage for a :func:`build_site` site (no ``together`` groups): one MPEG-4 file per camera video, where
    person ``p`` stands in the stored box (x 10-60, y 20-140) in ``PERSON_COLOURS[p]`` during their slot and the
    frame is grey otherwise; the videos' stored paths are pointed at the files. Returns the paths."""
    from storage.schema import Video

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    with db.sessions.begin() as session:
        for video in session.scalars(select(Video).order_by(Video.id)):
            path = folder / f"video{video.id}.mp4"
            with av.open(str(path), "w") as out:
                stream = out.add_stream("mpeg4", rate=10)
                stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
                stream.options = {"qscale": "2"}
                for frame_index in range(video.frame_count):
                    image = np.full((480, 640, 3), 128, np.uint8)
                    person, offset = divmod(frame_index, 20)
                    if person < people and offset < 12:
                        image[20:140, 10:60] = PERSON_COLOURS[person]
                    for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                        out.mux(packet)
                for packet in stream.encode():
                    out.mux(packet)
            video.path = str(path)
            written.append(str(path))
    return written


class ColourEncoder:
    """A stand-in re-id model for re-encoding tests: a crop's embedding is a fixed random projection of its mean
    colour (``float32 [dims]``, L2-normalised), so two crops of one synthetic person agree and the crop's place in
    the frame is checked (a crop cut in the wrong place is grey). Counts the crops it encoded."""

    def __init__(self, name: str = "colour", dims: int = 32, seed: int = 7):
        self.name, self.checkpoint_hash, self.source, self.dims = name, f"{name}-{seed}".ljust(64, "0"), "", dims
        self.num_parts, self.clustering_threshold, self.descriptor_layout = 4, None, None
        self.projection = np.random.default_rng(seed).standard_normal((3, dims)).astype(np.float32)
        self.encoded = 0

    def vector_of(self, bgr) -> np.ndarray:
        """The embedding of a crop whose mean colour is ``bgr`` (``float [3]``, 0-255)."""
        v = (np.asarray(bgr, np.float32) / 255.0 - 0.5) @ self.projection
        return (v / np.linalg.norm(v)).astype(np.float32)

    def encode(self, crops, part_boxes=None) -> np.ndarray:
        self.encoded += len(crops)
        return (
            np.stack([self.vector_of(c.reshape(-1, 3).mean(axis=0)) for c in crops])
            if len(crops)
            else np.zeros((0, self.dims), np.float32)
        )
