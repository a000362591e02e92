"""A damaged index folder never changes what the index holds: deleted, truncated, corrupted or garbage files are
detected (sizes and checksums in the manifest) and rebuilt from the database; a file truncated under a running
process and a full disk fall back without a crash."""

import errno
import logging
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.database import open_database
from storage.model_registry import get_or_create_model
from storage.vector_index import EmbeddingIndex, index_folder
from tests.factories import ingest_tracks as _ingest


def _contents(index: EmbeddingIndex) -> dict:
    """What a search reads, in an order that does not depend on how the rows were laid out."""
    order = np.lexsort((index.sighting_ids,))
    torder = np.argsort(index.tracks.track_ids)
    return {
        "sightings": index.sighting_ids[order].tolist(),
        "tracks_of_rows": index.track_ids[order].tolist(),
        "cameras": index.camera_ids[order].tolist(),
        "times": index.timestamps[order].tolist(),
        "matrix": index.matrix[order].astype(np.float32).round(3).tolist(),
        "track_ids": index.tracks.track_ids[torder].tolist(),
        "descriptors": index.tracks.descriptors[torder].round(5).tolist(),
        "track_times": index.tracks.first_timestamps[torder].tolist(),
        "videos": dict(index.videos),
    }


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("damage")
    db = open_database(root / "d.db")
    model = get_or_create_model(db, "m", "h", 3)
    _ingest(db, model, "a", "cam0", [1, 2])
    _ingest(db, model, "b", "cam1", [4, 5, 6])
    expected = _contents(EmbeddingIndex.load(db, model, 3))
    yield db, model, expected
    db.close()


def _damage(path, action: str, offset_fraction: float, data: bytes) -> None:
    if action == "delete":
        path.unlink()
    elif action == "truncate":
        with open(path, "r+b") as handle:
            handle.truncate(int(path.stat().st_size * offset_fraction))
    elif action == "corrupt":
        size = path.stat().st_size
        with open(path, "r+b") as handle:
            handle.seek(min(int(size * offset_fraction), max(size - len(data), 0)))
            handle.write(data)
    else:  # garbage: the file replaced by other bytes
        path.write_bytes(data)


FILES = ["sightings", "meta", "times", "tracks", "track_ints", "track_times", "manifest"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    target=st.sampled_from(FILES),
    action=st.sampled_from(["delete", "truncate", "corrupt", "garbage"]),
    where=st.floats(0.0, 0.99),
    data=st.binary(min_size=1, max_size=64),
    running=st.booleans(),
)
def test_a_damaged_index_folder_never_changes_what_is_found(
    site, tmp_path_factory, target, action, where, data, running
):
    db, model, expected = site
    folder = index_folder(db, model, tmp_path_factory.mktemp("cache"))
    first = EmbeddingIndex.load(db, model, 3, folder=folder)
    assert _contents(first) == expected
    path = next(p for p in folder.path.iterdir() if p.name.startswith(target + "-") or p.name == target + ".json")
    before = path.read_bytes() if path.exists() else b""
    _damage(path, action, where, data)
    if running and action != "corrupt":  # the process that made the folder goes on searching (bytes overwritten
        first.refresh(db)  # in place under its mapping are seen by the next process, below)
        assert _contents(first) == expected
    reopened = EmbeddingIndex.load(db, model, 3, folder=folder)
    assert _contents(reopened) == expected, (target, action, before != path.read_bytes() if path.exists() else 0)
    if running:  # and once the next process rebuilt the folder, the running one adopts the sound files
        first.refresh(db)
        assert _contents(first) == expected
    tracks_only = EmbeddingIndex.load(db, model, 3, with_sightings=False, folder=folder)
    assert tracks_only.tracks.track_ids.tolist() == sorted(expected["track_ids"])


def test_a_damaged_folder_is_rebuilt_with_one_warning_and_stays_in_use_after_new_ingests(site, tmp_path, caplog):
    db, model, expected = site
    folder = index_folder(db, model, tmp_path / "cache")
    EmbeddingIndex.load(db, model, 3, folder=folder)
    (folder.path / "tracks-0.bin").unlink()
    with caplog.at_level(logging.WARNING):
        reopened = EmbeddingIndex.load(db, model, 3, folder=folder)
    assert _contents(reopened) == expected
    assert [r.getMessage() for r in caplog.records if "search index" in r.getMessage()][0].count("tracks-0.bin")
    # the rebuilt folder is sound: a third process adopts it without reading the database again
    third = EmbeddingIndex(model, 3, folder=folder, database=reopened.database)
    assert third.refresh(db).added_videos == [] and _contents(third) == expected
    assert not (folder.path / "tracks-0.bin").exists()  # the damaged generation was removed


def test_a_file_truncated_under_a_running_process_is_let_go(site, tmp_path):
    db, model, expected = site
    folder = index_folder(db, model, tmp_path / "cache")
    running = EmbeddingIndex.load(db, model, 3, folder=folder)
    for path in folder.path.glob("*.bin"):
        with open(path, "r+b") as handle:
            handle.truncate(0)  # touching these pages through the old mapping would be a SIGBUS
    running.refresh(db)
    assert _contents(running) == expected


def test_a_full_disk_under_the_index_folder_keeps_the_index_in_memory(site, tmp_path, monkeypatch, caplog):
    db, model, expected = site

    def no_space(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", no_space)
    folder = index_folder(db, model, tmp_path / "cache")
    with caplog.at_level(logging.WARNING):
        index = EmbeddingIndex.load(db, model, 3, folder=folder)
    assert index.folder is None and _contents(index) == expected
    warnings = [r.getMessage() for r in caplog.records if "search index" in r.getMessage()]
    assert len(warnings) == 1 and "No space left" in warnings[0]
