"""Tracklet stitching: two fragments of one walking person are joined; people seen at the same time, someone
who looks different, or a fragment where the motion does not lead are never joined; the merge in storage keeps
every sighting and recomputes the descriptor."""

import numpy as np

from pipelines.ingest.stitching import StitchConfig, Tracklet, stitch
from storage.database import open_database
from storage.model_registry import get_or_create_model
from storage.track_merge import merge_tracks, track_boxes
from storage.videos import begin_video
from storage.watchlist import add_alert, add_entry, list_alerts
from storage.writer import VideoWriter
from tests.factories import observation as _obs
from tests.factories import video_info as _info


def _unit(*values):
    v = np.array(values, np.float32)
    return v / np.linalg.norm(v)


def _walker(tid, start, end, x0, descriptor, speed=20.0):
    """Someone 100 px tall walking right at ``speed`` px/s, seen from ``start`` to ``end`` s."""
    box = lambda t: np.array([x0 + speed * t, 100, x0 + speed * t + 40, 200], float)  # noqa: E731
    return Tracklet(tid, start, end, box(start), box(end), np.array([speed, 0.0]), descriptor)


def test_fragments_of_one_person_are_joined_in_time_order():
    person = _unit(1, 0.2, 0)
    chains = stitch([_walker(2, 6.0, 9.0, 0, person), _walker(1, 0.0, 5.0, 0, person)])
    assert chains == [[1, 2]]


def test_people_seen_at_once_or_looking_different_or_elsewhere_are_never_joined():
    person, other = _unit(1, 0.2, 0), _unit(0, 1, 0.3)
    first = _walker(1, 0.0, 5.0, 0, person)
    overlapping = _walker(2, 4.5, 9.0, 0, person)  # where the motion leads, but seen while the first still is
    assert stitch([first, overlapping]) == []
    assert stitch([first, _walker(3, 6.0, 9.0, 0, other)]) == []  # the right place, someone else
    assert stitch([first, _walker(4, 6.0, 9.0, 400, person)]) == []  # looks alike, but 4 heights off the path
    assert stitch([first, _walker(5, 12.0, 15.0, 0, person)]) == []  # after more than max_gap_s
    blind = _walker(6, 5.5, 8.0, 0, None)  # no descriptor: motion alone, within blind_gap_s
    assert stitch([first, blind]) == [[1, 6]]
    assert stitch([first, _walker(7, 7.0, 9.0, 0, None)], StitchConfig(blind_gap_s=1.5)) == []


def test_merging_keeps_every_sighting_and_recomputes_the_track(tmp_path):
    db = open_database(tmp_path / "m.db")
    model = get_or_create_model(db, "m", "h", 3)
    video = begin_video(db, _info(), model)
    writer = VideoWriter(db, video, model, 1_700_000_000.0)
    for frame in range(0, 30, 5):
        track = 1 if frame < 15 else 2
        writer.write(
            [_obs(track, frame, 0.5, np.ones(3))], np.array([[1, 0, 0] if track == 1 else [0, 1, 0]], np.float32), frame
        )
    writer.finish(30)
    tracks = track_boxes(db, video)
    assert len(tracks) == 2
    keep, gone = sorted(tracks, key=lambda t: tracks[t]["times"][0])
    entry = add_entry(db, "suspect", "track", str(gone), model, _unit(0, 1, 0))
    alert = add_alert(db, entry, "cam0", gone, None, 1_700_000_002.0, 0.9)  # raised live for the later fragment
    assert merge_tracks(db, [[keep, gone]]) == 1
    assert [(a.id, a.track_id) for a in list_alerts(db)] == [(alert, keep)]  # kept, now on the joined track
    merged = track_boxes(db, video)
    assert list(merged) == [keep] and len(merged[keep]["times"]) == 6
    np.testing.assert_allclose(merged[keep]["descriptor"], _unit(1, 1, 0), atol=1e-5)
    with db.engine.connect() as con:
        row = con.exec_driver_sql(
            f"SELECT first_time_s, last_time_s, num_sightings, num_embeddings FROM tracks WHERE id = {keep}"
        ).one()
    assert tuple(row) == (0.0, 2.5, 6, 6)
    db.close()
