"""The multi-camera ingest on real footage with the real OpenVINO detector and the ONNX encoder."""

import shutil
import threading

import cv2
import numpy as np
import pytest
from sqlalchemy import func, select

from common.errors import word_settings
from models.encoders import load_encoder
from models.pose import DetectorKeypoints
from models.tracking import PersonTracker
from pipelines.ingest.files import IngestJob, IngestOptions, IngestProgress, ingest
from storage.database import open_database
from storage.reads import count_rows
from storage.schema import Embedding, Sighting, Track, Video

DURATION = 3.0


@pytest.fixture(scope="module")
def encoder():
    from tests.conftest import OSNET, _require

    return load_encoder(_require(OSNET))


def _run(db, jobs, encoder, stop=None, progress=None, **options):
    from tests.conftest import POSE_DETECTOR

    opts = IngestOptions(analysis_fps=5, max_duration_s=DURATION, batch_size=8, **options)
    return ingest(
        db,
        jobs,
        encoder,
        lambda: PersonTracker(POSE_DETECTOR),
        lambda t: DetectorKeypoints(),
        opts,
        progress or IngestProgress(),
        stop,
    )


class Recorder(IngestProgress):
    def __init__(self):
        self.started, self.advanced, self.finished = [], {}, []

    def on_start(self, summary, total_frames):
        self.started.append((summary.camera, total_frames))

    def on_advance(self, camera, frames_analysed):
        self.advanced[camera] = frames_analysed

    def on_finish(self, summary):
        self.finished.append((summary.camera, summary.status))


@pytest.mark.slow
def test_two_lab_cameras_end_to_end(tmp_path, encoder, lab_cam0, lab_cam1, pose_detector):
    db = open_database(tmp_path / "lab.db")
    progress = Recorder()
    summaries = _run(
        db, [IngestJob(lab_cam0, start_time=1_750_000_000.0), IngestJob(lab_cam1)], encoder, progress=progress
    )
    assert [s.status for s in summaries] == ["done", "done"]
    assert sorted(progress.started) == [("cam0", 15), ("cam1", 15)]
    assert progress.advanced == {"cam0": 15, "cam1": 15}
    counts = count_rows(db)
    assert counts["cameras"] == 2 and counts["videos"] == 2
    assert counts["tracks"] == sum(s.tracks for s in summaries) >= 4
    assert counts["embeddings"] == sum(s.embeddings for s in summaries) > 0
    for s in summaries:
        assert s.frames_analysed == 15 and s.sightings > 15 and 0 < s.embeddings < s.sightings
        assert s.times.detect_track > 0 and s.times.encode > 0 and s.times.store > 0
    with db.session() as session:
        # every camera has tracks with descriptors, and the sampling bound holds: <= 1 crop per track per second
        for video in session.scalars(select(Video)):
            assert video.status == "complete" and video.frames_analysed == 15
            tracks = session.scalars(select(Track).where(Track.video_id == video.id)).all()
            assert any(t.descriptor is not None for t in tracks)
            for t in tracks:
                assert t.num_embeddings <= int(np.ceil(t.last_time_s - t.first_time_s + 1e-9)) + 1
                assert (
                    np.linalg.norm(np.frombuffer(t.descriptor, "<f4")) == pytest.approx(1, abs=1e-5)
                    if t.descriptor
                    else t.num_embeddings == 0
                )
        cam0_video = session.scalar(select(Video).where(Video.path.endswith("cam0.mp4")))
        assert cam0_video.start_time == 1_750_000_000.0
        sighting = session.scalar(select(Sighting).where(Sighting.thumbnail.is_not(None)).limit(1))
        thumb = cv2.imdecode(np.frombuffer(sighting.thumbnail, np.uint8), cv2.IMREAD_COLOR)
        assert thumb.shape[0] == 128 and thumb.shape[2] == 3
        assert np.frombuffer(sighting.keypoints, "<f4").shape == (51,)
        assert sighting.x2 > sighting.x1 and sighting.y2 > sighting.y1
        assert (
            session.scalar(
                select(func.count()).select_from(Embedding).join(Sighting).where(Sighting.thumbnail.is_(None))
            )
            == 0
        )
    db.close()


@pytest.mark.slow
def test_reingest_is_skipped_and_force_replaces_atomically(tmp_path, encoder, lab_cam1, pose_detector):
    db = open_database(tmp_path / "again.db")
    first = _run(db, [IngestJob(lab_cam1)], encoder)[0]
    before = count_rows(db)
    # the same footage under another name is recognised by content
    copy = tmp_path / "copy_of_cam1.mp4"
    shutil.copy(lab_cam1, copy)
    again = _run(db, [IngestJob(copy)], encoder)[0]
    assert again.status == "skipped" and "--force" in word_settings(again.message)  # the CLI's words for it
    assert count_rows(db) == before
    forced = _run(db, [IngestJob(lab_cam1)], encoder, force=True)[0]
    assert forced.status == "done" and forced.sightings == first.sightings
    assert count_rows(db) == before
    db.close()


@pytest.mark.slow
def test_interrupted_ingest_leaves_a_consistent_database_and_the_next_run_completes(
    tmp_path, encoder, lab_cam0, lab_cam1, pose_detector
):
    db = open_database(tmp_path / "stop.db")
    stop = threading.Event()

    class StopAfter(IngestProgress):
        def on_advance(self, camera, frames_analysed):
            if camera == "cam0" and frames_analysed >= 8:
                stop.set()

    summaries = _run(db, [IngestJob(lab_cam0), IngestJob(lab_cam1)], encoder, stop=stop, progress=StopAfter())
    assert "interrupted" in [s.status for s in summaries]
    with db.session() as session:
        statuses = session.scalars(select(Video.status)).all()
        assert "ingesting" in statuses
        # whatever was written is whole: every embedding has its sighting, every sighting its track
        orphans = session.scalar(select(func.count()).select_from(Sighting).outerjoin(Track).where(Track.id.is_(None)))
        assert orphans == 0
    summaries = _run(db, [IngestJob(lab_cam0), IngestJob(lab_cam1)], encoder)
    statuses = {s.camera: s.status for s in summaries}
    assert "done" in statuses.values() and "interrupted" not in statuses.values()
    with db.session() as session:
        assert session.scalars(select(Video.status)).all() == ["complete", "complete"]
        assert session.scalar(select(func.sum(Video.frames_analysed))) == 30
    reference = open_database(tmp_path / "clean.db")
    _run(reference, [IngestJob(lab_cam0), IngestJob(lab_cam1)], encoder)
    assert count_rows(db)["sightings"] == count_rows(reference)["sightings"]
    db.close()
    reference.close()


@pytest.mark.slow
def test_a_bad_video_does_not_stop_the_others(tmp_path, encoder, lab_cam1, pose_detector):
    db = open_database(tmp_path / "mixed.db")
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x01garbage" * 1000)
    summaries = _run(db, [IngestJob(bad), IngestJob(lab_cam1), IngestJob(tmp_path / "missing.mp4")], encoder)
    assert [s.status for s in summaries] == ["failed", "done", "failed"]
    assert "broken.mp4" in summaries[0].message and "missing.mp4" in summaries[2].message
    assert count_rows(db)["videos"] == 1 and summaries[1].embeddings > 0
    db.close()


@pytest.mark.slow
def test_a_camera_that_crashes_midway_is_cleaned_up_while_the_other_finishes(
    tmp_path, encoder, lab_cam0, lab_cam1, pose_detector
):
    from tests.conftest import POSE_DETECTOR

    class FlakyTracker(PersonTracker):
        calls = 0

        def _fail_on_sixth_frame(self):
            FlakyTracker.calls += 1
            if FlakyTracker.calls == 6:
                raise RuntimeError("simulated decoder/driver failure")

        def update(self, image):
            self._fail_on_sixth_frame()
            return super().update(image)

        def repeat(self, image=None):  # a frame that motion gating did not detect
            self._fail_on_sixth_frame()
            return super().repeat(image)

    lock = threading.Lock()
    made = []

    def make_tracker():
        with lock:
            made.append(1)
            return FlakyTracker(POSE_DETECTOR) if len(made) == 1 else PersonTracker(POSE_DETECTOR)

    db = open_database(tmp_path / "crash.db")
    opts = IngestOptions(analysis_fps=5, max_duration_s=DURATION, batch_size=8)
    summaries = ingest(
        db, [IngestJob(lab_cam0), IngestJob(lab_cam1)], encoder, make_tracker, lambda t: DetectorKeypoints(), opts
    )
    statuses = sorted(s.status for s in summaries)
    assert statuses == ["done", "failed"]
    failed = next(s for s in summaries if s.status == "failed")
    assert "simulated decoder/driver failure" in failed.message
    assert count_rows(db)["videos"] == 1
    db.close()


def _camera_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("camera-") and t.is_alive()]


class _RaisingEncoder:
    """The real encoder, except that encoding fails (a driver error, out of memory)."""

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name):
        return getattr(self._real, name)

    def encode(self, crops, part_boxes):
        raise RuntimeError("simulated encoder failure")


@pytest.mark.slow
def test_a_failing_encoder_stops_every_camera_thread_and_decoder_and_the_next_run_completes(
    tmp_path, encoder, lab_cam0, lab_cam1, pose_detector
):
    from pipelines.ingest.video import open_decoders

    db = open_database(tmp_path / "enc.db")
    jobs = [IngestJob(lab_cam0), IngestJob(lab_cam1)]
    with pytest.raises(RuntimeError, match="simulated encoder failure"):
        _run(db, jobs, _RaisingEncoder(encoder))
    assert _camera_threads() == [] and open_decoders() == 0
    with db.session() as session:
        videos = session.execute(select(Video.status, Video.owner)).all()
    assert videos == [("ingesting", None), ("ingesting", None)]  # unfinished, lease released
    summaries = _run(db, jobs, encoder)
    assert [s.status for s in summaries] == ["done", "done"]
    with db.session() as session:
        assert session.scalars(select(Video.status)).all() == ["complete", "complete"]
    db.close()


@pytest.mark.slow
def test_a_failing_database_stops_every_camera_thread_and_decoder(
    tmp_path, encoder, lab_cam0, lab_cam1, pose_detector, monkeypatch
):
    from sqlalchemy.exc import OperationalError

    from common.errors import DatabaseError
    from pipelines.ingest.video import open_decoders
    from storage.writer import VideoWriter

    def full_disk(self, *args, **kwargs):
        raise OperationalError("INSERT INTO sightings", {}, Exception("database or disk is full"))

    monkeypatch.setattr(VideoWriter, "write", full_disk)
    db = open_database(tmp_path / "full.db")
    with pytest.raises(DatabaseError, match="disk is full"):
        _run(db, [IngestJob(lab_cam0), IngestJob(lab_cam1)], encoder)
    assert _camera_threads() == [] and open_decoders() == 0
    db.close()
