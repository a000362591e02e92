"""A re-id model's own calibrated clustering threshold, recorded at ingest and used when it has no identities yet."""

from pipelines.matching.identities import DEFAULT_THRESHOLD, current_threshold
from storage.database import open_database
from storage.model_registry import get_or_create_model, model_threshold, set_model_threshold


def test_clustering_threshold_comes_from_the_model_when_no_identities_exist(tmp_path):
    db = open_database(tmp_path / "t.db")
    try:
        plain = get_or_create_model(db, "osnet", "a" * 64, 512)
        ours = get_or_create_model(db, "jointloss-mobilenet_v2-cuhk", "b" * 64, 1024)
        set_model_threshold(db, ours, 0.62)
        assert model_threshold(db, plain) is None and model_threshold(db, ours) == 0.62
        assert current_threshold(db, plain) == DEFAULT_THRESHOLD
        assert current_threshold(db, ours) == 0.62
        set_model_threshold(db, ours, 0.58)  # a re-ingest with a recalibrated checkpoint replaces it
        assert current_threshold(db, ours) == 0.58
    finally:
        db.close()
