"""Constrained clustering: each constraint on hand-made tracks, then identities on the four real lab cameras."""

import numpy as np
import pytest

from pipelines.matching.constraints import cannot_link
from pipelines.matching.identities import DEFAULT_THRESHOLD, cluster_identities, join_ranges
from storage.database import open_database
from storage.feedback import set_overlap
from storage.identities import load_identities
from storage.reads import get_tracks
from storage.vector_index import TrackTable
from storage.videos import camera_ids_by_name
from tests.conftest import LAB, copy_db
from tests.lab_geometry import same_person_pairs
from tests.reference_clustering import cluster_tracks


def _tracks(cameras, ranges):
    n = len(cameras)
    return TrackTable(
        np.arange(n, dtype=np.int64),
        np.array(cameras, np.int64),
        np.zeros(n, np.int64),
        np.array([r[0] for r in ranges], float),
        np.array([r[1] for r in ranges], float),
        np.zeros((n, 4), np.float32),
    )


def test_same_camera_tracks_overlapping_in_time_are_different_people():
    t = _tracks([1, 1, 1], [(0, 10), (5, 15), (16, 20)])
    forbidden = cannot_link(t, set())
    assert forbidden[0, 1] and forbidden[1, 0]
    assert not forbidden[0, 2] and not forbidden[1, 2] and not forbidden.diagonal().any()
    similar = np.ones((3, 3))
    clusters = cluster_tracks(similar, forbidden, [], threshold=0.5)
    assert all(not ({0, 1} <= set(members)) for members, _ in clusters)


def test_two_cameras_at_the_same_instant_only_when_marked_overlapping():
    t = _tracks([1, 2, 2], [(0, 10), (9, 12), (11, 20)])
    forbidden = cannot_link(t, set())
    assert forbidden[0, 1] and not forbidden[0, 2]  # 0 and 2 never overlap in time
    assert not cannot_link(t, {(1, 2)})[0, 1]
    assert cannot_link(t, {(1, 2)})[1, 2]  # the same camera stays constrained
    similar = np.full((3, 3), 0.9)
    assert sorted(map(sorted, (m for m, _ in cluster_tracks(similar, forbidden, [], 0.5)))) in (
        [[0, 2], [1]],
        [[0], [1, 2]],
    )  # 1-2 also overlap within camera 2


def test_average_linkage_threshold_and_constraints_block_whole_clusters():
    sim = np.array([[1.0, 0.9, 0.2, 0.85], [0.9, 1.0, 0.3, 0.2], [0.2, 0.3, 1.0, 0.1], [0.85, 0.2, 0.1, 1.0]])
    none = np.zeros((4, 4), bool)
    clusters = cluster_tracks(sim, none, [], threshold=0.5)
    # 0-1 merge first (0.9); {0,1} with 3 averages (0.85 + 0.2) / 2 = 0.525 >= 0.5
    assert sorted(map(sorted, (m for m, _ in clusters))) == [[0, 1, 3], [2]]
    assert sorted(map(sorted, (m for m, _ in cluster_tracks(sim, none, [], threshold=0.6)))) == [[0, 1], [2], [3]]
    blocked = none.copy()
    blocked[1, 3] = blocked[3, 1] = True  # 1 and 3 may not share a cluster, so 3 cannot join {0, 1}
    assert sorted(map(sorted, (m for m, _ in cluster_tracks(sim, blocked, [], threshold=0.5)))) == [[0, 1], [2], [3]]


def test_must_link_joins_tracks_below_the_threshold_and_confidence_is_cohesion():
    sim = np.array([[1.0, 0.1, 0.2], [0.1, 1.0, 0.2], [0.2, 0.2, 1.0]])
    clusters = dict((tuple(m), c) for m, c in cluster_tracks(sim, np.zeros((3, 3), bool), [(0, 1)], 0.5))
    assert (0, 1) in clusters and clusters[(0, 1)] == pytest.approx(1.0)  # a confirmed pair counts 1
    assert clusters[(2,)] == pytest.approx(0.8)  # singleton: 1 - its best similarity (0.2)


def test_join_ranges_merges_close_tracks():
    assert join_ranges([(10, 12, 2), (0, 5, 1), (6, 8, 3)], gap_s=2.0) == [(0, 8, [1, 3]), (10, 12, [2])]
    assert join_ranges([(0, 5, 1), (6, 8, 3)], gap_s=0.5) == [(0, 5, [1]), (6, 8, [3])]


def _violations(db, overlaps):
    """Pairs of tracks in one identity that the time constraints forbid."""
    bad = []
    for identity in load_identities(db):
        tracks = list(get_tracks(db, identity.track_ids).values())
        for i, a in enumerate(tracks):
            for b in tracks[i + 1 :]:
                simultaneous = a.first_timestamp <= b.last_timestamp and b.first_timestamp <= a.last_timestamp
                pair = tuple(sorted((a.camera_id, b.camera_id)))
                if simultaneous and (a.camera_id == b.camera_id or pair not in overlaps):
                    bad.append((identity.id, a.id, b.id))
    return bad


def test_real_lab_cameras_without_overlap_marks_never_put_one_person_in_two_places(lab4_db, tmp_path):
    db = open_database(copy_db(lab4_db, tmp_path))
    assert load_identities(db), "ingest clusters identities"
    assert _violations(db, set()) == []
    db.close()


def test_real_lab_identities_span_cameras_and_agree_with_the_calibration(lab4_db, tmp_path):
    path = copy_db(lab4_db, tmp_path)
    db = open_database(path)
    camera_ids = sorted(camera_ids_by_name(db).values())
    set_overlap(db, camera_ids)  # the four cameras watch one room
    report = cluster_identities(db)
    assert report.threshold == DEFAULT_THRESHOLD
    identities = load_identities(db)
    cameras_of = {i.id: {t.camera for t in get_tracks(db, i.track_ids).values()} for i in identities}
    assert report.multi_camera >= 2
    assert sum(len(c) >= 3 for c in cameras_of.values()) >= 2  # two people walk through all the views
    all_pairs = {(a, b) for a in camera_ids for b in camera_ids if a < b}
    assert _violations(db, all_pairs) == []  # one camera never shows one person twice at once
    # the calibration says which cross-camera tracks are one person; the identities must agree
    labels = same_person_pairs(path, LAB)
    member = {t: i.id for i in identities for t in i.track_ids}
    together = [same for (a, b), same in labels.items() if member.get(a) is not None and member.get(a) == member.get(b)]
    true_pairs = [pair for pair, same in labels.items() if same]
    joined_true = sum(member.get(a) is not None and member.get(a) == member.get(b) for a, b in true_pairs)
    assert together and sum(together) / len(together) >= 0.9  # precision of co-membership
    assert joined_true / len(true_pairs) >= 0.8  # recall of co-membership
    db.close()


def _co_membership(path, db) -> tuple[float, float]:
    """Precision and recall of co-membership against the lab calibration."""
    identities = load_identities(db)
    member = {t: i.id for i in identities for t in i.track_ids}
    labels = same_person_pairs(path, LAB)
    together = [same for (a, b), same in labels.items() if member.get(a) is not None and member.get(a) == member.get(b)]
    true_pairs = [pair for pair, same in labels.items() if same]
    joined = sum(member.get(a) is not None and member.get(a) == member.get(b) for a, b in true_pairs)
    return sum(together) / max(1, len(together)), joined / len(true_pairs)


def test_incremental_matching_gives_new_tracks_identities_without_touching_the_others(lab4_db, tmp_path):
    from pipelines.matching.identities import assign_new_tracks
    from storage.audit import read_log

    path = copy_db(lab4_db, tmp_path)
    db = open_database(path)
    cameras = camera_ids_by_name(db)
    set_overlap(db, sorted(cameras.values()))
    cluster_identities(db)
    full = {i.id: i.track_ids for i in load_identities(db)}
    with db.engine.begin() as con:  # cam2 and cam3 arrive later: their tracks have no identity yet
        con.exec_driver_sql(
            f"DELETE FROM identity_tracks WHERE track_id IN (SELECT id FROM tracks WHERE camera_id "
            f"IN ({cameras['cam2']}, {cameras['cam3']}))"
        )
        con.exec_driver_sql("DELETE FROM identities WHERE id NOT IN (SELECT identity_id FROM identity_tracks)")
    before = {i.id: i.track_ids for i in load_identities(db)}
    report = assign_new_tracks(db)
    after = {i.id: i.track_ids for i in load_identities(db)}
    assert report.tracks > 0 and report.joined > 0
    assert all(set(members) <= set(after[i]) for i, members in before.items())  # nobody was taken out
    assert sum(map(len, after.values())) == sum(map(len, full.values()))  # every track has an identity again
    precision, recall = _co_membership(path, db)
    assert precision >= 0.9 and recall >= 0.8
    all_pairs = {(a, b) for a in cameras.values() for b in cameras.values() if a < b}
    assert _violations(db, all_pairs) == []
    assert read_log(db, "cluster")[0].details["reason"] == "incremental"
    assert assign_new_tracks(db).tracks == 0  # nothing new: nothing done
    db.close()


def test_incremental_matching_respects_a_rejection(lab4_db, tmp_path):
    from pipelines.matching.identities import assign_new_tracks
    from storage.feedback import set_verdicts

    db = open_database(copy_db(lab4_db, tmp_path))
    set_overlap(db, sorted(camera_ids_by_name(db).values()))
    cluster_identities(db)
    identity = next(i for i in load_identities(db) if len(i.track_ids) == 2)
    kept, newcomer = identity.track_ids
    with db.engine.begin() as con:
        con.exec_driver_sql(f"DELETE FROM identity_tracks WHERE track_id = {newcomer}")
    set_verdicts(db, different=[(kept, newcomer)])
    assign_new_tracks(db)
    member = {t: i.id for i in load_identities(db) for t in i.track_ids}
    assert member[newcomer] != member[kept]
    db.close()


def test_the_sparse_clustering_gives_the_dense_reference_clusters_under_every_constraint():
    from benchmarks.scale import synthetic_tracks  # the lab cameras' similarity structure
    from pipelines.matching.linkage import cluster_sparse

    x, first, last, cameras, person = synthetic_tracks(150, 4, cameras=6, days=1.0, dims=256)
    overlaps = {(1, 2), (3, 4)}
    must = [(0, 5), (10, 11)]  # one a wrong confirmation (tracks of two people): it must hold
    rejected = [(20, 21), (40, 41)]  # tracks of one person, rejected: they must stay apart
    table = TrackTable(np.arange(len(x)), cameras, np.zeros(len(x), np.int64), first, last, x)
    forbidden = cannot_link(table, overlaps)
    component = np.arange(len(x))
    for a, b in must:
        component[component == component[b]] = component[a]
    forbidden &= component[:, None] != component[None, :]
    for a, b in rejected:
        forbidden[a, b] = forbidden[b, a] = True
    dense = cluster_tracks(x @ x.T, forbidden, must, 0.75)
    exact = cluster_sparse(x, first, last, cameras, overlaps, 0.75, must, rejected, k=len(x) - 1, min_edge=-1.0)
    sparse = cluster_sparse(x, first, last, cameras, overlaps, 0.75, must, rejected, k=30)
    assert [m for m, _ in exact] == [m for m, _ in dense]
    # confidences: as the reference for every identity of several tracks (a lone track's ignores constraints)
    assert np.allclose([c for m, c in exact if len(m) > 1], [c for m, c in dense if len(m) > 1], atol=1e-5)
    assert [m for m, _ in sparse] == [m for m, _ in dense]  # 30 neighbours suffice at these similarities
    member = {i: c for c, (m, _) in enumerate(sparse) for i in m}
    assert member[0] == member[5] and member[10] == member[11]
    assert member[20] != member[21] and member[40] != member[41]
    assert len(dense) < len(x) / 2  # it did merge: most people's tracks are together
