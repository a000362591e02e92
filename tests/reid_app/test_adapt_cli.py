"""``reid-app adapt`` and ``reid-app models`` (issue 31): listing, switching and rolling back versions, and the
errors a user meets; on a synthetic site with real footage and a stand-in model (no weights)."""

from __future__ import annotations

from pipelines.ingest.engine import register_encoder
from storage.database import open_database
from storage.model_versions import current_model_id, set_version_info
from tests.conftest import assert_one_clear_error, run_cli
from tests.factories import ColourEncoder, build_site, write_site_footage


def _current(path):
    db = open_database(path)
    try:
        return current_model_id(db)
    finally:
        db.close()


def _site(tmp_path):
    path = tmp_path / "site.db"
    db = open_database(path)
    site = build_site(db, people=3, cameras=2)
    write_site_footage(db, tmp_path / "footage", people=3)
    return path, db, site


def test_adapt_refuses_a_model_without_a_trainable_checkpoint(tmp_path):
    path, db, _ = _site(tmp_path)
    db.close()
    result = run_cli("adapt", "--db", path)
    assert_one_clear_error(result, "no reid-app checkpoint", "cannot be adapted")
    assert not (tmp_path / "site-models").exists()


def test_adapt_on_an_empty_database_says_to_ingest_first(tmp_path):
    open_database(tmp_path / "empty.db").close()
    result = run_cli("adapt", "--db", tmp_path / "empty.db")
    assert_one_clear_error(result, "no embeddings", "reid-app ingest")


def test_models_lists_versions_and_rollback_goes_back_to_the_model_replaced(tmp_path):
    path, db, site = _site(tmp_path)
    result = run_cli("models", "--db", path)
    assert result.code == 0 and "synthetic" in result.stdout and "yes" in result.stdout
    rollback = run_cli("models", "rollback", "--db", path)
    assert_one_clear_error(rollback, "not an adapted version", "nothing to roll back")

    encoder = ColourEncoder()
    version = register_encoder(db, encoder)
    set_version_info(db, version, {"adapted_from": site.model_id})
    db.close()
    # the stand-in model has no file: 'use' names what is missing and leaves the current model as it was
    refused = run_cli("models", "use", str(version), "--db", path)
    assert_one_clear_error(refused, f"weights of model {version}", "missing")
    assert _current(path) == site.model_id

    db = open_database(path)
    from pipelines.adaptation.versions import make_current

    make_current(db, version, encoder)
    db.close()
    listed = run_cli("models", "--db", path)
    assert listed.code == 0 and "colour" in listed.stdout
    back = run_cli("models", "rollback", "--db", path)
    assert back.code == 0, back.stderr
    assert f"rolled back: model {site.model_id} is now current (was {version})" in back.stdout
    assert _current(path) == site.model_id
    unknown = run_cli("models", "use", "99", "--db", path)
    assert_one_clear_error(unknown, "no re-id model 99", "reid-app models")


def test_new_footage_is_encoded_by_the_current_adapted_version_unless_a_model_is_chosen(tmp_path):
    from pipelines.adaptation.versions import make_current
    from reid_app.ingest_runner import IngestChoices, with_site_model

    path, db, site = _site(tmp_path)
    assert with_site_model(IngestChoices(), db).reid is None  # the site's model is not an adapted version
    weights = tmp_path / "site-models" / "adapted.xml"
    weights.parent.mkdir()
    weights.write_text("<net/>")
    encoder = ColourEncoder()
    encoder.source = str(weights)
    version = register_encoder(db, encoder)
    set_version_info(db, version, {"adapted_from": site.model_id})
    assert with_site_model(IngestChoices(), db).reid is None  # registered, but not current yet
    make_current(db, version, encoder)
    assert with_site_model(IngestChoices(), db).reid == str(weights)
    assert with_site_model(IngestChoices(reid="mine.onnx"), db).reid == "mine.onnx"
    db.close()


def test_image_queries_are_encoded_by_the_current_model_after_a_rollback(tmp_path):
    from pipelines.adaptation.versions import make_current
    from pipelines.matching.service import database_model
    from storage.model_registry import get_or_create_model

    path, db, site = _site(tmp_path)
    start_file = tmp_path / "start.onnx"
    start_file.write_bytes(b"onnx")
    get_or_create_model(db, "synthetic", f"{0:064x}", site.dims, str(start_file))  # the start model's file
    adapted = tmp_path / "adapted.xml"
    adapted.write_text("<net/>")
    encoder = ColourEncoder()
    encoder.source = str(adapted)
    version = register_encoder(db, encoder)
    set_version_info(db, version, {"adapted_from": site.model_id})
    make_current(db, version, encoder)
    assert database_model(db) == adapted
    make_current(db, site.model_id)  # rolled back: the newer model's file still exists, but is not searched
    assert database_model(db) == start_file
    db.close()
