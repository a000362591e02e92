"""Browsing queries on a real lab ingest: cameras with videos, a video's sightings for drawing, thumbnails."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select

from storage.catalog import best_thumbnails, list_cameras, video_sightings
from storage.database import open_database
from storage.schema import Sighting, Track

pytestmark = pytest.mark.slow


@pytest.fixture
def db(lab_db):
    database = open_database(lab_db, create=False)
    yield database
    database.close()


def test_cameras_list_their_videos_and_tracks(db):
    cameras = list_cameras(db)
    assert [c.name for c in cameras] == ["cam0", "cam1"]
    with db.session() as session:
        tracks = dict(session.execute(select(Track.camera_id, func.count()).group_by(Track.camera_id)).all())
    for camera in cameras:
        assert camera.tracks == tracks[camera.id] > 0
        (video,) = camera.videos
        assert video.status == "complete" and camera.state == "complete"
        assert video.fps > 0 and video.width > 0 and video.duration_s == pytest.approx(camera.duration_s)
        assert camera.video_at(video.start_time + 1.0) is video
        assert camera.video_at(video.end_time + 1.0) is None
        assert video.frame_at(video.time_of(37)) == 37
        assert video.frame_at(video.start_time - 5) == 0


def test_video_sightings_match_the_database_and_hold_for_one_analysis_period(db):
    video = list_cameras(db)[0].videos[0]
    sightings = video_sightings(db, video.id)
    with db.session() as session:
        rows = session.execute(
            select(Sighting.id, Sighting.frame_index, Sighting.x1, Sighting.keypoints).where(
                Sighting.video_id == video.id
            )
        ).all()
    assert len(sightings) == len(rows) > 0
    assert np.all(np.diff(sightings.frame_indices) >= 0)
    by_id = {r.id: r for r in rows}
    for i, sid in enumerate(sightings.sighting_ids):
        assert sightings.frame_indices[i] == by_id[sid].frame_index
        assert sightings.boxes[i, 0] == pytest.approx(by_id[sid].x1)
    assert (sightings.keypoints[:, :, 2] > 0).any()  # the pose detector's keypoints are stored
    period = round(video.fps / video.analysis_fps)
    assert sightings.hold_frames == period - 1
    first = int(sightings.frame_indices[0])
    at_first = sightings.rows_at(first)
    assert set(sightings.frame_indices[at_first]) == {first}
    assert list(sightings.rows_at(first + period - 1)) == list(at_first)  # analysed frames are a period apart
    last = int(sightings.frame_indices[-1])
    assert len(sightings.rows_at(last + period)) == 0
    assert len(video_sightings(db, 10**6)) == 0


def test_best_thumbnails_are_the_highest_quality_encoded_sighting(db):
    with db.session() as session:
        track_ids = list(session.scalars(select(Track.id)))
        rows = session.execute(
            select(Sighting.track_id, Sighting.id, Sighting.quality).where(Sighting.thumbnail.is_not(None))
        ).all()
    best = best_thumbnails(db, track_ids)
    assert best
    for track_id, (sighting_id, jpeg) in best.items():
        candidates = [r for r in rows if r.track_id == track_id]
        assert sighting_id == max(candidates, key=lambda r: r.quality).id
        assert jpeg[:2] == b"\xff\xd8"  # JPEG
    assert set(best) == {r.track_id for r in rows}
