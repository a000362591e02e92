"""The watchlist on a synthetic site (its commands on the real lab database): entries from an identity, a track or
an image; which live track updates alert and which repeats are suppressed; alerts stored, audited and POSTed (and a
failing webhook recorded)."""

from __future__ import annotations

import dataclasses
import sqlite3

import numpy as np
import pytest

from common.errors import UsageError
from pipelines.live.watchlist import AlertDispatcher, WatchlistMatcher, load_matcher, watch_identity, watch_track
from storage.audit import read_log
from storage.database import open_database
from storage.reads import get_tracks
from storage.watchlist import list_alerts, list_entries
from tests.conftest import OSNET, _require, copy_db, run_cli
from tests.factories import track_update as _update
from tests.factories import two_people as _two_people
from tests.webhook import WebhookReceiver


@pytest.fixture
def db(site_db):
    """The synthetic two-camera site (``site_db``); the commands run on the real lab."""
    return site_db


def test_a_watched_person_alerts_once_per_track_and_once_per_camera_within_the_repeat_time(db):
    watched, same, other = _two_people(db)
    entry = watch_track(db, watched, "suspect")
    matcher = load_matcher(db, threshold=0.75, repeat_s=60.0)
    assert [e.id for e in matcher.entries] == [entry]
    first = matcher.check("cam1", [_update(db, same, 1000.0), _update(db, other, 1000.0)])
    assert [(h.entry.name, h.update.track_id) for h in first] == [("suspect", same)]
    assert first[0].similarity >= 0.75
    assert matcher.check("cam1", [_update(db, same, 1001.0)]) == []  # the same track again
    assert matcher.check("cam1", [_update(db, watched, 1030.0)]) == []  # the same person, same camera, 30 s later
    elsewhere = dataclasses.replace(_update(db, watched, 1030.0), track_id=10**6)  # a new track on another camera
    assert len(matcher.check("cam2", [elsewhere])) == 1
    assert matcher.check("cam1", [_update(db, other, 2000.0)]) == []  # someone else never alerts
    # a track with too few embeddings waits
    assert WatchlistMatcher(matcher.entries, 0.75, min_embeddings=3).check("cam1", [_update(db, same, 1.0, 2)]) == []


def test_stored_alerts_suppress_repeats_after_a_restart(db):
    watched, same, _ = _two_people(db)
    watch_track(db, watched, "suspect")
    dispatcher = AlertDispatcher(db)
    dispatcher.raise_alerts(load_matcher(db, 0.75).check("cam1", [_update(db, same, 1000.0)]))
    assert load_matcher(db, 0.75).check("cam1", [_update(db, same, 5000.0)]) == []


def test_an_identity_entry_is_the_mean_of_its_tracks_and_bad_sources_are_refused(db):
    from storage.identities import add_to_identities

    watched, same, _ = _two_people(db)
    with db.engine.begin() as con:  # the two views as one identity, as 'reid-app feedback --confirm' makes it
        con.exec_driver_sql(f"DELETE FROM identity_tracks WHERE track_id IN ({watched}, {same})")
    (identity_id,) = add_to_identities(db, 1, [(None, [watched, same], 0.9)], 0.75)
    entry_id = watch_identity(db, identity_id, "pair", "two views")
    entry = next(e for e in list_entries(db) if e.id == entry_id)
    tracks = get_tracks(db, [watched, same])
    mean = np.mean([t.descriptor for t in tracks.values()], axis=0)
    assert np.allclose(entry.vector, mean / np.linalg.norm(mean), atol=1e-5)
    assert (entry.kind, entry.source, entry.note) == ("identity", str(identity_id), "two views")
    with pytest.raises(UsageError, match="has no identity 999999"):
        watch_identity(db, 999999, "nobody")
    with pytest.raises(UsageError, match="has no track 999999"):
        watch_track(db, 999999, "nobody")


@pytest.mark.parametrize("status, delivered", [(200, "webhook 200"), (503, "webhook 503")])
def test_alerts_are_stored_audited_printed_and_posted(db, status, delivered):
    watched, same, _ = _two_people(db)
    watch_track(db, watched, "suspect", "red coat")
    receiver = WebhookReceiver(status)
    printed = []
    dispatcher = AlertDispatcher(db, receiver.url, on_alert=printed.append, timeout_s=2.0, attempts=2, backoff_s=0.05)
    payloads = dispatcher.raise_alerts(load_matcher(db, 0.75).check("cam1", [_update(db, same, 1000.0)]))
    dispatcher.close()
    receiver.close()
    assert printed == payloads and len(payloads) == 1
    got = [body for _, body in receiver.received]
    assert got and all(body == payloads[0] for body in got)
    assert len(got) == (1 if status == 200 else 2)  # a server error is tried again
    (alert,) = list_alerts(db)
    assert (alert.name, alert.camera, alert.track_id, alert.delivered) == (
        "suspect",
        "cam1",
        same,
        f"console, {delivered}",
    )
    assert payloads[0]["note"] == "red coat" and payloads[0]["time"].startswith("1970-01-01T00:16:40")
    (audited,) = read_log(db, "alert")
    assert audited.details["alert_id"] == alert.id and audited.details["track_id"] == same


def test_an_unreachable_webhook_is_recorded_and_holds_nothing_up(db):
    watched, same, _ = _two_people(db)
    watch_track(db, watched, "suspect")
    dispatcher = AlertDispatcher(db, "http://127.0.0.1:9/nothing", timeout_s=1.0, attempts=1)
    dispatcher.raise_alerts(load_matcher(db, 0.75).check("cam1", [_update(db, same, 1000.0)]))
    dispatcher.close()
    (alert,) = list_alerts(db)
    assert alert.delivered.startswith("webhook failed")


def test_the_watchlist_commands(lab4_db, tmp_path):
    path = copy_db(lab4_db, tmp_path)
    with sqlite3.connect(path) as con:
        track, jpeg = con.execute(
            "SELECT track_id, thumbnail FROM sightings WHERE thumbnail IS NOT NULL ORDER BY quality DESC LIMIT 1"
        ).fetchone()
    image = tmp_path / "person.jpg"
    image.write_bytes(jpeg)
    assert run_cli("watchlist", "add", "A", "--track", str(track), "--db", path).code == 0
    by_image = run_cli("watchlist", "add", "B", "--image", image, "--reid", _require(OSNET), "--db", path)
    assert by_image.code == 0, by_image.stderr
    listed = run_cli("watchlist", "list", "--db", path)
    assert f"A  (from track {track}" in listed.stdout and f"B  (from image {image.resolve()}" in listed.stdout
    db = open_database(path)
    a, b = list_entries(db)
    assert float(a.vector @ b.vector) > 0.75  # the image shows the person of the track
    db.close()
    both = run_cli("watchlist", "add", "C", "--track", str(track), "--identity", "1", "--db", path)
    assert both.code == 2 and both.error_lines == [
        "reid-app: error: give exactly one of --identity, --track or --image"
    ]
    missing = run_cli(
        "watchlist", "add", "D", "--image", tmp_path / "none.jpg", "--reid", _require(OSNET), "--db", path
    )
    assert missing.code == 2 and "does not exist" in missing.stderr
    assert run_cli("watchlist", "remove", str(a.id), "--db", path).code == 0
    gone = run_cli("watchlist", "remove", str(a.id), "--db", path)
    assert gone.code == 2 and f"has no entry {a.id}" in gone.stderr
    assert "B  (from image" in run_cli("watchlist", "list", "--db", path).stdout
    audit = run_cli("audit", "--db", path, "--action", "watchlist")
    assert audit.code == 0 and audit.stdout.count("watchlist") >= 3
