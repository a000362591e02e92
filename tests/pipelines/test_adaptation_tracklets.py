"""Site tracklets as unlabelled training data (issue 31): one class per tracklet within its camera, negatives from
the cannot-link rule and the investigators' rejections, positives from their confirmations."""

from pipelines.adaptation.tracklets import site_tracklets
from storage.feedback import set_overlap, set_verdicts
from storage.videos import camera_ids_by_name
from tests.factories import build_site


def test_each_tracklet_is_a_class_of_its_camera_and_people_seen_together_are_negatives(db):
    site = build_site(db, people=4, cameras=2, together=((0, 1),), walk_s=30.0)
    tracklets = site_tracklets(db, samples=5)
    assert len(tracklets.tracklets) == 8 and tracklets.model_id == site.model_id
    cameras = camera_ids_by_name(db)
    assert tracklets.classes == {cameras["cam0"]: 4, cameras["cam1"]: 4}
    for camera in cameras.values():
        assert sorted(t.camera_class for t in tracklets.tracklets if t.camera_id == camera) == [0, 1, 2, 3]
    assert all(len(t.sightings) == 5 for t in tracklets.tracklets)  # 12 encoded, 5 kept, spread over its life
    first = tracklets.tracklets[0].sightings
    assert first[0].frame_index < first[-1].frame_index and first[0].box[2] > first[0].box[0]
    # people 0 and 1 walk together: in each camera their tracklets overlap in time; nobody else does
    together = {frozenset(site.tracks_of(0)[c : c + 1] + site.tracks_of(1)[c : c + 1]) for c in range(2)}
    found = {
        frozenset((tracklets.tracklets[i].track_id, tracklets.tracklets[j].track_id)) for i, j in tracklets.negatives
    }
    assert found == together and not tracklets.positives


def test_simultaneous_views_are_negatives_unless_the_cameras_overlap(db):
    site = build_site(db, people=2, cameras=2)  # both cameras see each person at the same moment
    apart = site_tracklets(db)
    person_pairs = {frozenset(site.tracks_of(p)) for p in range(2)}
    found = {frozenset((apart.tracklets[i].track_id, apart.tracklets[j].track_id)) for i, j in apart.negatives}
    assert person_pairs <= found  # one person in two places at once, as far as the site knows
    set_overlap(db, camera_ids_by_name(db).values())
    together = site_tracklets(db)
    found = {frozenset((together.tracklets[i].track_id, together.tracklets[j].track_id)) for i, j in together.negatives}
    assert not person_pairs & found


def test_verdicts_become_pairs_and_a_confirmation_overrides_the_automatic_rule(db):
    site = build_site(db, people=3, cameras=2)  # simultaneous views, cameras not marked overlapping
    same_a, same_b = site.tracks_of(0)
    other = site.tracks_of(2)[0]
    set_verdicts(db, same=[(same_a, same_b)], different=[(same_a, other)])
    tracklets = site_tracklets(db)
    a, b, c = (tracklets.index_of(t) for t in (same_a, same_b, other))
    assert (min(a, b), max(a, b)) in tracklets.positives and (min(a, b), max(a, b)) not in tracklets.negatives
    assert (min(a, c), max(a, c)) in tracklets.negatives


def test_static_and_barely_encoded_tracks_are_left_out(db):
    import sqlite3

    site = build_site(db, people=3, cameras=1, frames_per_track=3)
    static = site.tracks_of(0)[0]
    with sqlite3.connect(db.path) as con:
        con.execute("UPDATE tracks SET static = 1 WHERE id = ?", (static,))
    kept = {t.track_id for t in site_tracklets(db, min_sightings=3).tracklets}
    assert kept == {site.tracks_of(1)[0], site.tracks_of(2)[0]}
    assert site_tracklets(db, min_sightings=4).tracklets == []


def test_a_database_without_embeddings_has_no_tracklets(db):
    empty = site_tracklets(db)
    assert empty.tracklets == [] and empty.negatives == set() and empty.model_id == 0
