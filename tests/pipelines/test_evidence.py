"""Evidence export of a real lab identity: summaries agree with the database, thumbnails and clips are real."""

import csv
import json

import cv2
import pytest

from pipelines.evidence import export_identity
from pipelines.identities import cluster_identities
from reid_app.errors import UsageError
from storage.database import open_database
from storage.feedback import set_overlap
from storage.repository import camera_ids_by_name
from storage.identities import load_identities
from storage.repository import get_tracks
from tests.conftest import copy_db


@pytest.fixture
def db(lab4_db, tmp_path):
    database = open_database(copy_db(lab4_db, tmp_path / "db"))
    set_overlap(database, camera_ids_by_name(database).values())
    cluster_identities(database)
    yield database
    database.close()


def test_export_writes_per_camera_ranges_thumbnails_json_and_csv(db, tmp_path):
    identity = max(load_identities(db), key=lambda i: len(i.track_ids))
    tracks = get_tracks(db, identity.track_ids)
    report = export_identity(db, identity.id, tmp_path / "out")
    summary = json.loads(report.json_path.read_text())
    assert summary["identity"] == identity.id
    assert {c["camera"] for c in summary["cameras"]} == {t.camera for t in tracks.values()}
    assert len(summary["cameras"]) >= 2
    exported_tracks = [t for c in summary["cameras"] for t in c["tracks"]]
    assert sorted(t["track_id"] for t in exported_tracks) == sorted(identity.track_ids)
    for camera in summary["cameras"]:
        for r in camera["time_ranges"]:
            covered = [tracks[t] for t in r["tracks"]]
            assert r["start_timestamp"] == pytest.approx(min(t.first_timestamp for t in covered))
            assert r["end_timestamp"] == pytest.approx(max(t.last_timestamp for t in covered))
    thumbs = [tmp_path / "out" / p for t in exported_tracks for p in t["thumbnails"]]
    assert len(thumbs) == report.thumbnails > 0
    image = cv2.imread(str(thumbs[0]))
    assert image is not None and image.shape[0] > image.shape[1]  # a person crop: taller than wide
    with report.csv_path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(int(r["track_id"]) for r in rows) == sorted(identity.track_ids)
    assert all(int(r["sightings"]) == tracks[int(r["track_id"])].num_sightings for r in rows)
    assert report.clips == []


def test_clips_cover_each_track_with_a_margin_and_a_missing_video_is_a_note(db, tmp_path):
    identity = min((i for i in load_identities(db)), key=lambda i: sum(
        t.last_timestamp - t.first_timestamp for t in get_tracks(db, i.track_ids).values()))
    track = get_tracks(db, identity.track_ids)[identity.track_ids[0]]
    report = export_identity(db, identity.id, tmp_path / "clips", clips=True, clip_margin_s=0.5)
    assert len(report.clips) == len(identity.track_ids)
    clip = cv2.VideoCapture(str(report.clips[0]))
    frames = int(clip.get(cv2.CAP_PROP_FRAME_COUNT))
    fps = clip.get(cv2.CAP_PROP_FPS)
    ok, frame = clip.read()
    clip.release()
    assert ok and frame.shape[:2] == (728, 1288)
    expected = (track.last_timestamp - track.first_timestamp + 1.0) * fps
    assert abs(frames - expected) <= fps * 0.6  # the margin is cut at the start of the video
    from sqlalchemy import update

    from storage.schema import Video
    with db.sessions.begin() as s:
        s.execute(update(Video).values(path=str(tmp_path / "moved.mp4")))
    moved = export_identity(db, identity.id, tmp_path / "moved", clips=True)
    assert moved.clips == [] and "cannot be opened" in moved.notes[0]
    assert json.loads(moved.json_path.read_text())["notes"] == moved.notes


def test_export_errors(db, tmp_path):
    with pytest.raises(UsageError, match="identity 99999 does not exist"):
        export_identity(db, 99999, tmp_path / "x")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        export_identity(db, load_identities(db)[0].id, blocker)
