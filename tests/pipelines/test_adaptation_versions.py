"""Model versions of a site (issue 31): re-encoding from the footage, the switch, rollback, and the check that
guards them; on synthetic sites with real footage and a stand-in model (no weights)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import func, select

from common.errors import UsageError
from pipelines.adaptation.check import agreement, got_worse, split_held_out
from pipelines.adaptation.reencode import reencode_site
from pipelines.adaptation.versions import list_versions, make_current, rollback_target
from pipelines.ingest.engine import register_encoder
from pipelines.live.watchlist import load_matcher, watch_identity, watch_track
from pipelines.matching.feedback import confirm
from pipelines.matching.identities import cluster_identities
from storage.database import open_database
from storage.identities import labels, load_identities, set_label
from storage.model_registry import list_models
from storage.model_versions import IncompleteVersionError, current_model_id, switch_model
from storage.reads import get_tracks
from storage.schema import Embedding, Sighting, Video
from storage.watchlist import add_entry, list_entries
from tests.factories import PERSON_COLOURS, ColourEncoder, build_site, write_site_footage

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def footage_site(tmp_path):
    """A synthetic two-camera site of four people (the cameras overlap) with real footage behind every sighting."""
    db = open_database(tmp_path / "site.db")
    site = build_site(db, people=4, cameras=2)
    write_site_footage(db, tmp_path / "footage", people=4)
    from storage.feedback import set_overlap
    from storage.videos import camera_ids_by_name

    set_overlap(db, sorted(camera_ids_by_name(db).values()))
    cluster_identities(db, reason="test")
    yield db, site
    db.close()


def _embedding_rows(db, model_id):
    with db.session() as session:
        return session.execute(
            select(Embedding.sighting_id, func.count())
            .where(Embedding.model_id == model_id)
            .group_by(Embedding.sighting_id)
        ).all()


def test_reencoding_cuts_every_sighting_from_its_footage_at_the_stored_box(footage_site):
    db, site = footage_site
    encoder = ColourEncoder()
    target = register_encoder(db, encoder)
    report = reencode_site(db, encoder, site.model_id, target)
    assert report.complete and report.encoded == report.total == len(_embedding_rows(db, site.model_id))
    with db.session() as session:
        rows = session.execute(
            select(Sighting.track_id, Embedding.vector)
            .join(Embedding, Embedding.sighting_id == Sighting.id)
            .where(Embedding.model_id == target)
        ).all()
    for track_id, blob in rows:  # each crop shows the person's colour: it was cut at the stored box, in its frame
        expected = encoder.vector_of(PERSON_COLOURS[site.person_of[track_id]])
        assert float(np.frombuffer(blob, "<f4") @ expected) > 0.99
    again = reencode_site(db, encoder, site.model_id, target)
    assert again.encoded == 0 and again.already == report.total and again.complete


def test_a_version_becomes_current_keeping_identities_names_and_verdicts_and_rollback_restores(footage_site, tmp_path):
    db, site = footage_site
    start = site.model_id
    person0 = site.tracks_of(0)
    confirm(db, person0[0], person0[1])
    identity = next(i for i in load_identities(db) if person0[0] in i.track_ids)
    set_label(db, identity.id, "courier")
    watch_track(db, person0[0], "by track")
    watch_identity(db, identity.id, "by identity")
    image = tmp_path / "person0.png"
    cv2.imwrite(str(image), np.tile(PERSON_COLOURS[0], (120, 50, 1)))
    add_entry(db, "by image", "image", str(image), start, site.appearance[0])
    add_entry(db, "by a lost image", "image", str(tmp_path / "gone.png"), start, site.appearance[1])
    before = {t.id: t.descriptor.copy() for t in get_tracks(db, list(site.person_of)).values()}

    encoder = ColourEncoder()
    version = register_encoder(db, encoder)
    report = make_current(db, version, encoder)
    assert report.reencode.complete and report.switch.previous == start
    assert current_model_id(db) == version and list_models(db)[0].id == version
    tracks = get_tracks(db, list(site.person_of))
    for t in tracks.values():  # descriptors are the new model's, from its embeddings of the footage
        assert t.descriptor_model_id == version
        assert float(t.descriptor @ encoder.vector_of(PERSON_COLOURS[site.person_of[t.id]])) > 0.99
    identities = load_identities(db, version)
    assert len(identities) == 4 and all(i.model_id == version for i in identities)
    kept = next(i for i in identities if person0[0] in i.track_ids)
    assert kept.id == identity.id and person0[1] in kept.track_ids and labels(db)[kept.id][0] == "courier"
    assert [v.id for v in list_versions(db) if v.current] == [version]
    carried = {e.name: e for e in list_entries(db, version)}  # the watchlist keeps watching, in the new space
    assert set(carried) == {"by track", "by identity", "by image"}
    assert report.watchlist_lost == [f"watchlist entry 4 (by a lost image, image {tmp_path / 'gone.png'})"]
    expected = encoder.vector_of(PERSON_COLOURS[0])
    assert all(float(e.vector @ expected) > 0.99 for e in carried.values())
    assert {e.name for e in load_matcher(db).entries} == set(carried)

    assert rollback_target(db) == start
    back = make_current(db, start)
    assert back.reencode is None  # the old model still holds every sighting: nothing to encode
    assert current_model_id(db) == start
    for t in get_tracks(db, list(site.person_of)).values():
        assert t.descriptor_model_id == start
        assert np.allclose(t.descriptor, before[t.id], atol=1e-5)
    assert next(i for i in load_identities(db, start) if person0[0] in i.track_ids).id == identity.id


def test_an_incomplete_version_is_never_switched_to(footage_site):
    db, site = footage_site
    encoder = ColourEncoder()
    version = register_encoder(db, encoder)
    reencode_site(db, encoder, site.model_id, version, stop=lambda: True)  # stops after its first batch
    with pytest.raises(IncompleteVersionError):
        switch_model(db, version)
    assert current_model_id(db) == site.model_id
    assert all(t.descriptor_model_id == site.model_id for t in get_tracks(db, list(site.person_of)).values())


def test_no_switch_while_a_video_is_being_ingested(footage_site):
    db, site = footage_site
    from storage.videos import begin_video
    from tests.factories import video_info

    begin_video(db, video_info("b" * 64, "cam0"), site.model_id)  # leased by this (live) process
    encoder = ColourEncoder()
    version = register_encoder(db, encoder)
    with pytest.raises(UsageError, match="being ingested"):
        make_current(db, version, encoder)
    assert current_model_id(db) == site.model_id


def test_missing_footage_keeps_the_current_model_and_names_the_file(footage_site):
    db, site = footage_site
    with db.sessions.begin() as session:
        video = session.scalars(select(Video).order_by(Video.id)).first()
        gone = Path(video.path)
    gone.unlink()
    encoder = ColourEncoder()
    version = register_encoder(db, encoder)
    with pytest.raises(UsageError, match=gone.name):
        make_current(db, version, encoder)
    assert current_model_id(db) == site.model_id


_REENCODE_SCRIPT = """
import sys, time
sys.path.insert(0, {root!r})
import pipelines.adaptation.reencode as reencode
from pipelines.adaptation.reencode import reencode_site
from pipelines.ingest.engine import register_encoder
from storage.database import open_database
from tests.factories import ColourEncoder

reencode.BATCH = 4
db = open_database({db!r})
encoder = ColourEncoder()
target = register_encoder(db, encoder)

def progress(done, total):
    print(done, total, flush=True)
    time.sleep({pause})

report = reencode_site(db, encoder, {source}, target, progress)
print("encoded", report.encoded, "already", report.already, "total", report.total, "crops", encoder.encoded, flush=True)
"""


def test_reencoding_resumes_after_kill_9_with_no_sighting_encoded_twice_or_missed(footage_site, tmp_path):
    db, site = footage_site
    path = str(db.location)
    total = len(_embedding_rows(db, site.model_id))
    script = tmp_path / "reencode.py"
    script.write_text(_REENCODE_SCRIPT.format(root=str(ROOT), db=path, source=site.model_id, pause=0.5))
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    seen = 0
    deadline = time.monotonic() + 120
    while seen < 8 and time.monotonic() < deadline:  # two batches of four committed, then killed mid-run
        line = process.stdout.readline()
        if not line:
            break
        seen = int(line.split()[0])
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert 8 <= seen < total

    script.write_text(_REENCODE_SCRIPT.format(root=str(ROOT), db=path, source=site.model_id, pause=0))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1].split()
    encoded, already, crops = int(last[1]), int(last[3]), int(last[7])
    assert already >= seen and already + encoded == total
    assert crops == encoded  # the second run cut and encoded only what was missing
    target = next(v.id for v in list_versions(db) if v.name == "colour")
    rows = _embedding_rows(db, target)
    assert len(rows) == total and all(n == 1 for _, n in rows)
    source_ids = {s for s, _ in _embedding_rows(db, site.model_id)}
    assert {s for s, _ in rows} == source_ids


def test_the_check_ranks_confirmed_partners_and_counts_negatives_taken_as_first_match():
    features = np.eye(4, dtype=np.float32)
    features[2] = [0.9, 0.1, 0, 0]  # camera 1's first tracklet looks like camera 0's first
    features[3] = [0.1, 0.9, 0, 0]
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    cameras = np.array([0, 0, 1, 1])
    good = agreement(features, cameras, confirmed=[(0, 2)], negatives=[(0, 3)])
    assert good.confirmed_mean_rank == 1.0 and good.confirmed_rank1 == 1.0 and good.negative_first_match == 0.0
    swapped = features[[0, 1, 3, 2]]
    bad = agreement(swapped, cameras, confirmed=[(0, 2)], negatives=[(0, 3)])
    assert bad.confirmed_mean_rank == 2.0 and bad.negative_first_match == 1.0
    assert len(got_worse(good, bad)) == 2 and got_worse(bad, good) == [] and got_worse(good, good) == []
    nothing = agreement(features, cameras, [], [])
    assert not nothing.measured and nothing.as_dict()["confirmed_mean_rank"] is None


def test_held_out_pairs_are_every_nth_in_sorted_order_and_the_same_each_run():
    pairs = [(5, 1), (2, 3), (0, 9), (4, 7)]
    kept, held = split_held_out(pairs, 2)
    assert held == [(0, 9), (2, 3)] and kept == [(1, 5), (4, 7)]
    assert split_held_out(list(reversed(pairs)), 2) == (kept, held)
    assert split_held_out([(1, 2)], 2) == ([], [(1, 2)])
