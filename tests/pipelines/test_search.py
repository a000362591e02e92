import numpy as np
import pytest
from sqlalchemy import select

from common.errors import UsageError
from models.encoders import load_encoder
from pipelines.matching.search import Searcher, SearchFilters, SearchOptions
from storage.audit import read_log
from storage.database import open_database
from storage.feedback import set_verdicts
from storage.schema import Camera, Embedding, Sighting, Track
from tests.conftest import copy_db

QUIET = dict(audit=False)


@pytest.fixture
def lab(lab_db, tmp_path):
    """The real two-camera lab ingest (real thumbnails, unencoded sightings, the OSNet space)."""
    database = open_database(copy_db(lab_db, tmp_path))
    yield database
    database.close()


@pytest.fixture
def db(site_db):
    """The synthetic two-camera site (``site_db``)."""
    return site_db


def _tracks(db, camera):
    with db.session() as s:
        return list(
            s.scalars(
                select(Track)
                .join(Camera)
                .where(Camera.name == camera, Track.descriptor.is_not(None))
                .order_by(Track.num_embeddings.desc())
            )
        )


def _vectors(db, track_id):
    with db.session() as s:
        blobs = s.scalars(select(Embedding.vector).join(Sighting).where(Sighting.track_id == track_id)).all()
    return np.stack([np.frombuffer(b, "<f4") for b in blobs])


@pytest.mark.slow
def test_mean_track_search_scores_descriptors_and_excludes_only_the_query_track(lab):
    db = lab
    query = _tracks(db, "cam0")[0]
    results = Searcher(db).by_track(query.id, SearchOptions(top_k=50, **QUIET))
    assert query.id not in [r.track_id for r in results]
    others = {t.id for cam in ("cam0", "cam1") for t in _tracks(db, cam)} - {query.id}
    assert {r.track_id for r in results} == others  # every other encoded track, own camera included
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True)
    q = np.frombuffer(query.descriptor, "<f4")
    with db.session() as s:
        for r in results:
            assert r.score == pytest.approx(
                float(q @ np.frombuffer(s.get(Track, r.track_id).descriptor, "<f4")), abs=1e-5
            )
    best = results[0].best.sighting
    assert best.track_id == results[0].track_id and best.thumbnail.startswith(b"\xff\xd8")
    assert best.camera in ("cam0", "cam1") and best.box.shape == (4,)


def test_max_track_search_is_the_best_pair_of_samples(db):
    query = _tracks(db, "cam0")[0]
    results = Searcher(db).by_track(query.id, SearchOptions(top_k=5, track_similarity="max", **QUIET))
    q = _vectors(db, query.id)
    for r in results:
        expected = float((q @ _vectors(db, r.track_id).T).max())
        assert r.score == pytest.approx(expected, abs=2e-3)  # the index holds float16
        assert r.best.score == pytest.approx(r.score, abs=2e-3)


def test_filters_limit_cameras_and_time(db):
    query = _tracks(db, "cam0")[0]
    searcher = Searcher(db)
    other = searcher.by_track(query.id, SearchOptions(top_k=50, **QUIET), SearchFilters(other_cameras_only=True))
    assert other and {r.camera for r in other} == {"cam1"}
    only0 = searcher.by_track(query.id, SearchOptions(top_k=50, **QUIET), SearchFilters(cameras=["cam0"]))
    assert {r.camera for r in only0} <= {"cam0"}
    assert searcher.by_track(query.id, SearchOptions(**QUIET), SearchFilters(exclude_cameras=["cam0", "cam1"])) == []
    start = min(r.first_timestamp for r in other)
    window = SearchFilters(after=start + 2.0, before=start + 3.0)
    timed = searcher.by_track(query.id, SearchOptions(top_k=50, samples_per_track=20, **QUIET), window)
    assert timed
    for r in timed:
        assert all(start + 2.0 <= m.sighting.timestamp <= start + 3.0 for m in r.sightings)
    with pytest.raises(UsageError, match="no camera named lobby"):
        searcher.by_track(query.id, SearchOptions(**QUIET), SearchFilters(cameras=["lobby"]))


def test_results_per_sighting_and_expanded_tracks(db):
    query = _tracks(db, "cam0")[0]
    searcher = Searcher(db)
    per_sighting = searcher.by_track(query.id, SearchOptions(top_k=8, per_track=False, track_similarity="max", **QUIET))
    assert len(per_sighting) == 8
    assert len({r.best.sighting.id for r in per_sighting}) == 8
    assert len({r.track_id for r in per_sighting}) < 8  # several sightings of one track
    expanded = searcher.by_track(query.id, SearchOptions(top_k=2, samples_per_track=4, **QUIET))
    for r in expanded:
        assert 1 <= len(r.sightings) <= 4
        assert [m.score for m in r.sightings] == sorted((m.score for m in r.sightings), reverse=True)
        assert all(m.sighting.track_id == r.track_id for m in r.sightings)


def test_reranking_keeps_the_candidates_and_reports_distances(db):
    query = _tracks(db, "cam0")[0]
    searcher = Searcher(db)
    plain = searcher.by_track(query.id, SearchOptions(top_k=50, **QUIET))
    reranked = searcher.by_track(query.id, SearchOptions(top_k=50, rerank=True, **QUIET))
    assert {r.track_id for r in reranked} == {r.track_id for r in plain}
    distances = [r.rerank_distance for r in reranked]
    assert all(d is not None for d in distances) and distances == sorted(distances)


def test_sighting_and_image_queries_and_errors(lab, osnet, tmp_path):
    db = lab
    with db.session() as s:
        sighting_id, track_id, thumb = s.execute(
            select(Sighting.id, Sighting.track_id, Sighting.thumbnail)
            .join(Embedding)
            .join(Track)
            .join(Camera)
            .where(Camera.name == "cam1")
            .limit(1)
        ).one()
        unencoded = s.scalar(select(Sighting.id).outerjoin(Embedding).where(Embedding.id.is_(None)).limit(1))
    searcher = Searcher(db)
    results = searcher.by_sighting(sighting_id, SearchOptions(**QUIET))
    assert results and track_id not in [r.track_id for r in results]
    image = tmp_path / "person.jpg"
    image.write_bytes(thumb)
    found = searcher.by_image(image, load_encoder(osnet), SearchOptions(top_k=3, track_similarity="max", **QUIET))
    assert found[0].track_id == track_id and found[0].score > 0.9
    with pytest.raises(UsageError, match="no embedding"):
        searcher.by_sighting(unencoded)
    with pytest.raises(UsageError, match="does not exist"):
        searcher.by_sighting(10**9)
    with pytest.raises(UsageError, match="does not exist"):
        searcher.by_track(10**9)
    with pytest.raises(UsageError, match="does not exist"):
        searcher.by_image(tmp_path / "nothing.jpg", load_encoder(osnet))
    with pytest.raises(UsageError, match="dimensions"):
        searcher.by_vector(np.ones(7, np.float32), _tracks(db, "cam0")[0].descriptor_model_id)


def test_feedback_removes_rejected_and_lifts_confirmed_tracks_and_searches_are_audited(db):
    query = _tracks(db, "cam0")[0]
    searcher = Searcher(db)
    before = searcher.by_track(query.id, SearchOptions(top_k=50))
    top, last = before[0].track_id, before[-1].track_id
    set_verdicts(db, same=[(query.id, last)], different=[(query.id, top)])
    after = searcher.by_track(query.id, SearchOptions(top_k=50))
    assert top not in [r.track_id for r in after]
    assert after[0].track_id == last and after[0].confirmed and not after[1].confirmed
    log = read_log(db, "search")
    assert len(log) == 2 and log[0].details["query"] == f"track {query.id}"
    assert log[0].details["results"][0] == last and log[1].details["results"][0] == top
    assert log[0].created_at >= log[1].created_at


def test_index_follows_new_and_deleted_videos(db):
    from storage.schema import Video
    from storage.videos import delete_video

    searcher = Searcher(db)
    model_id = _tracks(db, "cam0")[0].descriptor_model_id
    full = searcher.index(model_id).size
    with db.session() as s:
        cam1_video = s.scalar(select(Video.id).join(Camera).where(Camera.name == "cam1"))
    delete_video(db, cam1_video)
    index = searcher.index(model_id)
    assert 0 < index.size < full and set(np.unique(index.camera_ids)) == {_tracks(db, "cam0")[0].camera_id}
    assert {r.camera for r in searcher.by_track(_tracks(db, "cam0")[0].id, SearchOptions(top_k=50, **QUIET))} <= {
        "cam0"
    }
