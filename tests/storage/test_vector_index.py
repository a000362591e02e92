"""The in-memory index follows the database: complete videos only, appends new ones, drops deleted ones."""

import numpy as np

from storage.database import open_database
from storage.model_registry import get_or_create_model
from storage.vector_index import EmbeddingIndex
from storage.videos import delete_video
from tests.factories import ingest_tracks as _ingest


def test_refresh_loads_complete_videos_then_only_what_changed(db):
    model = get_or_create_model(db, "m", "h", 3)
    first = _ingest(db, model, "a", "cam0", [1, 2])
    _ingest(db, model, "b", "cam1", [7], finish=False)
    index = EmbeddingIndex.load(db, model, 3)
    assert index.size == 6 and len(index.tracks) == 2 and set(index.videos) == {first}
    for track, rows in index.track_rows.items():
        assert rows.stop - rows.start == 3 and set(index.track_ids[rows]) == {track}
    np.testing.assert_allclose(np.linalg.norm(index.matrix.astype(np.float32), axis=1), 1.0, atol=1e-3)
    assert index.matrix.dtype == np.float16 and np.all(index.timestamps >= 1_700_000_000.0)

    second = _ingest(db, model, "c", "cam1", [3])
    report = index.refresh(db)
    assert report.added_videos == [second] and report.removed_videos == [] and index.size == 9
    generation = index.generation
    delete_video(db, first)
    report = index.refresh(db)
    assert report.removed_videos == [first] and index.size == 3 and index.generation > generation
    assert set(index.track_rows) == set(index.tracks.track_ids.tolist()) and len(index.tracks) == 1
    assert index.refresh(db).added_videos == []
    tracks_only = EmbeddingIndex.load(db, model, 3, with_sightings=False)
    assert tracks_only.size == 0 and len(tracks_only.tracks) == 1


def test_a_persisted_index_is_reopened_without_reading_the_database_and_shared_between_processes(db, tmp_path):
    from storage.vector_index import index_folder

    model = get_or_create_model(db, "m", "h", 3)
    first = _ingest(db, model, "a", "cam0", [1, 2])
    folder = index_folder(db, model, tmp_path / "cache")
    assert folder.path.parent.name == index_folder(db, model, tmp_path / "cache").path.parent.name  # stable id
    saved = EmbeddingIndex.load(db, model, 3, folder=folder)
    assert saved.size == 6 and (folder.path / "manifest.json").exists()

    reopened = EmbeddingIndex(model, 3, folder=folder, database=saved.database)
    report = reopened.refresh(db)
    assert report.added_videos == [] and reopened.size == 6  # adopted from the folder, nothing read again
    np.testing.assert_array_equal(reopened.matrix, saved.matrix)
    np.testing.assert_array_equal(reopened.sighting_ids, saved.sighting_ids)
    assert reopened.track_rows == saved.track_rows and set(reopened.videos) == {first}

    second = _ingest(db, model, "c", "cam1", [3])
    assert saved.refresh(db).added_videos == [second]  # one process appends...
    assert reopened.refresh(db).added_videos == [] and reopened.size == 9  # ...the other adopts it
    np.testing.assert_array_equal(reopened.matrix, saved.matrix)

    delete_video(db, first)  # a removal writes a new generation; the old files are deleted
    old_files = {p.name for p in folder.path.glob("sightings-*.bin")}
    assert reopened.refresh(db).removed_videos == [first] and reopened.size == 3
    assert not old_files & {p.name for p in folder.path.glob("sightings-*.bin")}
    assert saved.refresh(db).removed_videos == [] and saved.size == 3 and set(saved.videos) == {second}
    np.testing.assert_array_equal(saved.matrix, reopened.matrix)

    tracks_only = EmbeddingIndex.load(db, model, 3, with_sightings=False, folder=folder)
    assert tracks_only.size == 0 and tracks_only.tracks.track_ids.tolist() == saved.tracks.track_ids.tolist()
    np.testing.assert_array_equal(tracks_only.tracks.descriptors, saved.tracks.descriptors)


def test_an_index_folder_of_another_database_or_a_damaged_manifest_is_rebuilt(db, tmp_path):
    from storage.index_files import IndexFolder

    model = get_or_create_model(db, "m", "h", 3)
    _ingest(db, model, "a", "cam0", [1, 2])
    folder = IndexFolder(tmp_path / "shared")
    EmbeddingIndex.load(db, model, 3, folder=folder)
    other = open_database(tmp_path / "other.db")
    try:
        other_model = get_or_create_model(other, "m", "h", 3)
        _ingest(other, other_model, "z", "camZ", [5])
        index = EmbeddingIndex.load(other, other_model, 3, folder=folder)  # same folder, another database
        assert index.size == 3 and set(index.track_ids.tolist()) == {index.tracks.track_ids[0]}
    finally:
        other.close()
    (folder.path / "manifest.json").write_text("{not json")
    assert EmbeddingIndex.load(db, model, 3, folder=folder).size == 6
