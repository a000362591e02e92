import numpy as np
import pytest
from sqlalchemy import select

from models.encoders import load_encoder
from pipelines.search import search_by_image, search_by_sighting, search_by_track, search_by_vector
from reid_app.errors import UsageError
from storage.database import open_database
from storage.schema import Camera, Embedding, Sighting, Track


@pytest.fixture
def db(lab_db):
    database = open_database(lab_db, create=False)
    yield database
    database.close()


def _cam0_track(db):
    with db.session() as s:
        return s.scalar(select(Track).join(Camera).where(Camera.name == "cam0", Track.descriptor.is_not(None))
                        .order_by(Track.num_embeddings.desc()).limit(1))


def test_track_search_ranks_only_other_cameras_by_cosine(db):
    query = _cam0_track(db)
    results = search_by_track(db, query.id, top_k=50)
    assert results and all(r.camera == "cam1" for r in results)
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True) and all(-1.0 <= s <= 1.0001 for s in scores)
    q = np.frombuffer(query.descriptor, "<f4")
    with db.session() as s:
        best = s.get(Track, results[0].track_id)
        assert results[0].score == pytest.approx(float(q @ np.frombuffer(best.descriptor, "<f4")), abs=1e-5)
    assert len(search_by_track(db, query.id, top_k=1)) == 1


def test_sighting_search_and_errors(db):
    with db.session() as s:
        sighting_id, track_id = s.execute(select(Sighting.id, Sighting.track_id).join(Embedding)
                                          .join(Track).join(Camera).where(Camera.name == "cam1").limit(1)).one()
        unencoded = s.scalar(select(Sighting.id).outerjoin(Embedding).where(Embedding.id.is_(None)).limit(1))
    results = search_by_sighting(db, sighting_id)
    assert results and all(r.camera == "cam0" for r in results)
    with pytest.raises(UsageError, match="no embedding"):
        search_by_sighting(db, unencoded)
    with pytest.raises(UsageError, match="does not exist"):
        search_by_sighting(db, 10 ** 9)
    with pytest.raises(UsageError, match="does not exist"):
        search_by_track(db, 10 ** 9)


def test_image_search_finds_the_track_the_image_came_from(db, osnet, tmp_path):
    with db.session() as s:
        thumb, track_id = s.execute(select(Sighting.thumbnail, Sighting.track_id)
                                    .where(Sighting.thumbnail.is_not(None)).limit(1)).one()
    image = tmp_path / "person.jpg"
    image.write_bytes(thumb)
    results = search_by_image(db, image, load_encoder(osnet), top_k=3)
    assert results[0].track_id == track_id and results[0].score > 0.6
    with pytest.raises(UsageError, match="could not be read"):
        search_by_image(db, tmp_path / "nothing.jpg", load_encoder(osnet))


def test_vector_dimension_mismatch_is_reported(db):
    model_id = _cam0_track(db).descriptor_model_id
    with pytest.raises(UsageError, match="dimensions"):
        search_by_vector(db, np.ones(7, np.float32), model_id)
