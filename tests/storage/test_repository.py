import numpy as np
import pytest
from sqlalchemy import select

from storage.model_registry import get_or_create_model
from storage.reads import count_rows, get_sighting_embedding, get_tracks
from storage.schema import Sighting, Video
from storage.vector_index import EmbeddingIndex
from storage.vectors import bytes_to_vector
from storage.videos import begin_video, find_video
from storage.writer import VideoWriter
from tests.conftest import dead_owner, sqlite_execute
from tests.factories import observation as _obs
from tests.factories import video_info as _info


def test_round_trip_of_sightings_embeddings_and_descriptor(db):
    model = get_or_create_model(db, "osnet", "h" * 64, 3)
    assert get_or_create_model(db, "osnet", "h" * 64, 3) == model
    video_id = begin_video(db, _info(), model)
    writer = VideoWriter(db, video_id, model, start_time=1_700_000_000.0)
    e1, e2 = np.array([1, 0, 0], np.float32), np.array([0, 1, 0], np.float32)
    batch = [_obs(7, 0, 0.9, e1), _obs(7, 2, 0.0), _obs(8, 2, 0.5, e2)]
    writer.write(batch, np.stack([e1, e2]), frames_analysed=2)
    writer.write([_obs(7, 4, 0.3, e2)], e2[None], frames_analysed=3)
    assert count_rows(db)["sightings"] == 4 and count_rows(db)["embeddings"] == 3
    # not searchable before the video is complete
    assert len(EmbeddingIndex.load(db, model, 3).tracks) == 0
    writer.finish(3)
    gallery = EmbeddingIndex.load(db, model, 3).tracks
    tracks = get_tracks(db, gallery.track_ids.tolist())
    by_local = {tracks[int(t)].local_track_id: gallery.descriptors[i] for i, t in enumerate(gallery.track_ids)}
    expected = 0.9 * e1 + 0.3 * e2
    np.testing.assert_allclose(by_local[7], expected / np.linalg.norm(expected), rtol=1e-6)
    np.testing.assert_allclose(by_local[8], e2)
    track7 = next(t for t in tracks.values() if t.local_track_id == 7)
    assert track7.first_timestamp == pytest.approx(1_700_000_000.0)
    assert track7.last_timestamp == pytest.approx(1_700_000_000.4)
    assert track7.num_sightings == 3 and track7.camera == "cam0"
    with db.session() as s:
        rows = s.scalars(select(Sighting).order_by(Sighting.id)).all()
        assert rows[0].thumbnail == b"\xff\xd8jpeg" and rows[1].thumbnail is None
        np.testing.assert_allclose(bytes_to_vector(rows[0].keypoints).reshape(17, 3), batch[0].detection.keypoints)
        assert s.scalar(select(Video.status)) == "complete"
    emb = get_sighting_embedding(db, rows[0].id)
    np.testing.assert_allclose(emb.vector, e1)
    assert get_sighting_embedding(db, rows[1].id) is None
    with pytest.raises(LookupError):
        get_sighting_embedding(db, 10_000)


def test_forced_replacement_keeps_old_rows_until_the_new_ingest_completes(db):
    model = get_or_create_model(db, "m", "h", 3)
    first = begin_video(db, _info(), model)
    w = VideoWriter(db, first, model, 0.0)
    w.write([_obs(1, 0, 0.5, np.ones(3, np.float32))], np.ones((1, 3), np.float32), 1)
    w.finish(1)
    second = begin_video(db, _info(), model)
    assert find_video(db, "f" * 64).id == first  # the complete copy is found first
    assert count_rows(db)["videos"] == 2 and count_rows(db)["sightings"] == 1
    w2 = VideoWriter(db, second, model, 0.0)
    w2.write(
        [_obs(1, 0, 0.5, np.ones(3, np.float32)), _obs(2, 0, 0.5, np.ones(3, np.float32))],
        np.ones((2, 3), np.float32),
        1,
    )
    w2.finish(1)
    assert find_video(db, "f" * 64).id == second
    assert count_rows(db) == {"cameras": 1, "videos": 1, "tracks": 2, "sightings": 2, "embeddings": 2}


def test_interrupted_video_rows_are_replaced_by_the_next_attempt(db):
    model = get_or_create_model(db, "m", "h", 3)
    first = begin_video(db, _info(), model)
    VideoWriter(db, first, model, 0.0).write([_obs(1, 0, 0.5, np.ones(3, np.float32))], np.ones((1, 3), np.float32), 1)
    assert find_video(db, "f" * 64).status == "ingesting"
    sqlite_execute(db.path, f"UPDATE videos SET owner = '{dead_owner()}'")  # that process was killed
    begin_video(db, _info(), model)  # the next run starts over: the partial rows go
    assert count_rows(db)["videos"] == 1 and count_rows(db)["sightings"] == 0
