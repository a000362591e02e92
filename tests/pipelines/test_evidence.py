"""Evidence export of a real lab identity: summaries agree with the database, thumbnails and clips are real."""

import csv
import json

import cv2
import pytest

from common.errors import UsageError
from pipelines.evidence.export import export_identity
from pipelines.matching.identities import cluster_identities
from storage.database import open_database
from storage.feedback import set_overlap
from storage.identities import load_identities
from storage.reads import get_tracks
from storage.videos import camera_ids_by_name
from tests.conftest import copy_db


@pytest.fixture
def db(lab4_db, tmp_path):
    database = open_database(copy_db(lab4_db, tmp_path / "db"))
    set_overlap(database, camera_ids_by_name(database).values())
    cluster_identities(database)
    yield database
    database.close()


@pytest.mark.slow
def test_export_writes_per_camera_ranges_thumbnails_json_and_csv(db, tmp_path):
    identity = max(load_identities(db), key=lambda i: len(i.track_ids))
    tracks = get_tracks(db, identity.track_ids)
    report = export_identity(db, identity.id, tmp_path / "out")
    summary = json.loads(report.json_path.read_text())
    assert summary["identity"] == identity.id
    assert {c["camera"] for c in summary["cameras"]} == {t.camera for t in tracks.values()}
    assert len(summary["cameras"]) >= 2
    exported_tracks = [t for c in summary["cameras"] for t in c["tracks"]]
    assert sorted(t["track_id"] for t in exported_tracks) == sorted(identity.track_ids)
    for camera in summary["cameras"]:
        for r in camera["time_ranges"]:
            covered = [tracks[t] for t in r["tracks"]]
            assert r["start_timestamp"] == pytest.approx(min(t.first_timestamp for t in covered))
            assert r["end_timestamp"] == pytest.approx(max(t.last_timestamp for t in covered))
    thumbs = [tmp_path / "out" / p for t in exported_tracks for p in t["thumbnails"]]
    assert len(thumbs) == report.thumbnails > 0
    image = cv2.imread(str(thumbs[0]))
    assert image is not None and image.shape[0] > image.shape[1]  # a person crop: taller than wide
    from storage.schema import Sighting

    sighting_id = int(thumbs[0].stem.rsplit("sighting", 1)[1])
    with db.session() as session:
        row = session.get(Sighting, sighting_id)
    box_h, box_w = row.y2 - row.y1, row.x2 - row.x1
    assert abs(image.shape[0] - box_h) <= 2 and abs(image.shape[1] - box_w) <= 2  # full resolution, not 128 px
    # the lab clips carry no start time: never a 1970 date, the seconds into the video instead
    assert all(t["start"] is None and t["start_local"] is None and t["start_s_in_video"] >= 0 for t in exported_tracks)
    assert "1970" not in report.json_path.read_text() and "1970" not in report.csv_path.read_text()
    with report.csv_path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(int(r["track_id"]) for r in rows) == sorted(identity.track_ids)
    assert all(int(r["sightings"]) == tracks[int(r["track_id"])].num_sightings for r in rows)
    assert {r["start_utc"] for r in rows} == {"time unknown"}
    assert report.clips == []
    _assert_manifest_matches(report, db)


def _assert_manifest_matches(report, db):
    import hashlib

    from storage.audit import read_log

    manifest = json.loads(report.manifest_path.read_text())
    out = report.manifest_path.parent
    on_disk = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name != "manifest.json")
    assert sorted(f["path"] for f in manifest["files"]) == on_disk
    for entry in manifest["files"] + [s for s in manifest["sources"] if s["sha256"]]:
        path = out / entry["path"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], entry["path"]
    assert manifest["sources"] and all(s["sha256"] for s in manifest["sources"])
    assert manifest["reid_app_version"] and manifest["model"]["checkpoint_hash"]
    (entry,) = read_log(db, "export", 1)
    assert entry.details["manifest_sha256"] == hashlib.sha256(report.manifest_path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_clips_cover_each_track_with_a_margin_and_a_missing_video_is_a_note(db, tmp_path):
    identity = min(
        (i for i in load_identities(db)),
        key=lambda i: sum(t.last_timestamp - t.first_timestamp for t in get_tracks(db, i.track_ids).values()),
    )
    track = get_tracks(db, identity.track_ids)[identity.track_ids[0]]
    report = export_identity(db, identity.id, tmp_path / "clips", clips=True, clip_margin_s=0.5)
    assert len(report.clips) == len(identity.track_ids)
    import av

    with av.open(str(report.clips[0])) as container:
        assert container.streams.video[0].codec_context.name == "h264"  # plays in browsers and desktop players
    clip = cv2.VideoCapture(str(report.clips[0]))
    frames = int(clip.get(cv2.CAP_PROP_FRAME_COUNT))
    fps = clip.get(cv2.CAP_PROP_FPS)
    ok, frame = clip.read()
    clip.release()
    assert ok and frame.shape[:2] == (728, 1288)
    expected = (track.last_timestamp - track.first_timestamp + 1.0) * fps
    assert abs(frames - expected) <= fps * 0.6  # the margin is cut at the start of the video
    from sqlalchemy import update

    from storage.schema import Video

    with db.sessions.begin() as s:
        s.execute(update(Video).values(path=str(tmp_path / "moved.mp4")))
    moved = export_identity(db, identity.id, tmp_path / "moved", clips=True)
    assert moved.clips == [] and any("cannot be opened" in n for n in moved.notes)
    assert any("stored thumbnails" in n for n in moved.notes) and any("could not be hashed" in n for n in moved.notes)
    assert json.loads(moved.json_path.read_text())["notes"] == moved.notes


@pytest.mark.slow
def test_export_errors(db, tmp_path):
    with pytest.raises(UsageError, match="identity 99999 does not exist"):
        export_identity(db, 99999, tmp_path / "x")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        export_identity(db, load_identities(db)[0].id, blocker)


@pytest.mark.slow
def test_the_case_report_opens_in_a_real_browser(db, tmp_path):
    import shutil
    import subprocess

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (Debian package chromium; .ci/run installs it when it can)")
    identity = max(load_identities(db), key=lambda i: len(i.track_ids))
    report = export_identity(db, identity.id, tmp_path / "case")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", report.html_path.as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    summary = json.loads(report.json_path.read_text())
    # a machine-made identity is never titled as one person: its first page says how many links are suggestions
    suggested = summary["links"]["suggested"]
    assert (
        suggested > 0
        and f"Identity {identity.id}: where and when these tracks were seen ({suggested} of "
        f"{len(identity.track_ids)} linked by the machine's suggestion only)"
        in dom
    )
    assert "not confirmed by an investigator" in dom.split("</p>")[0]
    for camera in summary["cameras"]:
        assert f"Camera {camera['camera']}" in dom
    assert dom.count("<img ") == report.thumbnails and dom.count("<rect ") == len(identity.track_ids)
    shot = tmp_path / "report.png"
    subprocess.run(
        [browser, *flags, "--window-size=1200,900", f"--screenshot={shot}", report.html_path.as_uri()],
        capture_output=True,
        timeout=120,
    )
    import os

    if os.environ.get("REID_APP_KEEP_SCREENSHOTS"):  # to look at the rendered report by eye
        shutil.copy(shot, os.environ["REID_APP_KEEP_SCREENSHOTS"])
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (900, 1200)
    assert image.std() > 10  # rendered text and crops, not a blank page


def test_the_manifest_certifies_only_this_exports_files_and_a_shared_folder_is_refused(db, tmp_path):
    """A file already in the folder is not certified; a second export into the folder and an export into the
    database's own folder are refused before anything is written; a camera named like a formula is neutralised."""
    first, second = sorted(load_identities(db), key=lambda i: -len(i.track_ids))[:2]
    camera = get_tracks(db, first.track_ids)[first.track_ids[0]].camera
    with db.engine.begin() as con:
        con.exec_driver_sql(f"UPDATE cameras SET name = '=HYPERLINK(\"http://x\",\"y\")' WHERE name = '{camera}'")
    out = tmp_path / "case"
    out.mkdir()
    (out / "notes.txt").write_text("the investigator's own notes")
    report = export_identity(db, first.id, out)
    manifest = json.loads(report.manifest_path.read_text())
    listed = {f["path"] for f in manifest["files"]}
    assert "notes.txt" not in listed and listed == {str(p.relative_to(out)) for p in report.written}
    with report.csv_path.open() as fh:
        cells = [c for row in csv.reader(fh) for c in row]
    assert not any(c.startswith(("=", "+", "@")) for c in cells) and any(c.startswith("'=HYPERLINK") for c in cells)
    with pytest.raises(UsageError, match="already holds an export"):
        export_identity(db, second.id, out)
    assert json.loads(report.manifest_path.read_text()) == manifest  # the first export is untouched
    with pytest.raises(UsageError, match="holds the database"):
        export_identity(db, second.id, db.path.parent)
    assert not (db.path.parent / "manifest.json").exists()


def test_an_export_says_which_links_an_investigator_confirmed(db, tmp_path):
    from pipelines.matching.feedback import confirm
    from tests.conftest import run_cli

    identity = max(load_identities(db), key=lambda i: len(i.track_ids))
    report = export_identity(db, identity.id, tmp_path / "machine")
    summary = json.loads(report.json_path.read_text())
    links = {t["track_id"]: t["link"] for c in summary["cameras"] for t in c["tracks"]}
    reference = next(t for t, kind in links.items() if kind == "reference")
    assert set(links.values()) == {"reference", "suggested"} and report.suggested == len(identity.track_ids) - 1
    assert report.unconfirmed_warning.startswith(f"{report.suggested} of the {len(identity.track_ids)} tracks")
    html = report.html_path.read_text()
    assert html.count("machine suggestion (similarity ") == report.suggested and "class='warning'" in html
    cli = run_cli("export-identity", "--db", db.url, "--identity", str(identity.id), "--out", tmp_path / "cli")
    assert cli.code == 0 and f"unconfirmed: {report.suggested} of the {len(identity.track_ids)} tracks" in cli.stdout

    confirmed = [t for t in identity.track_ids if t != reference][:1]
    confirm(db, reference, confirmed[0])
    identity = next(i for i in load_identities(db) if reference in i.track_ids)
    report = export_identity(db, identity.id, tmp_path / "half")
    links = {t["track_id"]: t["link"] for c in json.loads(report.json_path.read_text())["cameras"] for t in c["tracks"]}
    assert links[confirmed[0]] == "confirmed" and report.suggested == len(identity.track_ids) - 2
    for track in identity.track_ids:
        if links[track] == "suggested":
            confirm(db, reference, track)
    identity = next(i for i in load_identities(db) if reference in i.track_ids)
    report = export_identity(db, identity.id, tmp_path / "all")
    assert report.suggested == 0 and report.unconfirmed_warning is None
    html = report.html_path.read_text()
    assert ": where and when this person was seen</h1>" in html and "class='warning'" not in html
    assert "linked by an investigator's confirmation" in html


def _sharpness(image) -> float:
    """Variance of the Laplacian of a grey image region: high for edges (a face, a logo), low once blurred."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    return float(cv2.Laplacian(grey, cv2.CV_64F).var()) if grey.size else 0.0


@pytest.mark.slow
def test_exports_blur_every_bystander_and_an_unredacted_export_keeps_the_source_pixels(db, tmp_path):
    from models.detection import PersonDetector
    from pipelines.ingest.mot_eval import box_iou
    from storage.schema import Sighting
    from tests.conftest import PLAIN_DETECTOR, _require

    # the person of a camera where others are seen at the same time
    identity = next(
        i
        for i in sorted(load_identities(db), key=lambda i: len(i.track_ids))
        if any(t.camera in ("cam1", "cam2") for t in get_tracks(db, i.track_ids).values())
    )
    report = export_identity(db, identity.id, tmp_path / "redacted", clips=True)
    summary = json.loads(report.json_path.read_text())
    manifest = json.loads(report.manifest_path.read_text())
    assert manifest["redaction"]["bystanders_blurred"] and "blurred" in manifest["redaction"]["method"]
    assert "Bystanders" in report.html_path.read_text()

    detector = PersonDetector(_require(PLAIN_DETECTOR))  # re-detects everyone in the source frames
    checked = 0
    for camera in summary["cameras"]:
        for track in camera["tracks"]:
            if not track["clip"]:
                continue
            source = cv2.VideoCapture(track["video"])
            first = max(0, int((track["start_s_in_video"] - 1.0) * source.get(cv2.CAP_PROP_FPS)))
            clip = cv2.VideoCapture(str(tmp_path / "redacted" / track["clip"]))
            frames = int(clip.get(cv2.CAP_PROP_FRAME_COUNT))
            with db.session() as session:
                own = {
                    s.frame_index: (s.x1, s.y1, s.x2, s.y2)
                    for s in session.query(Sighting).filter(Sighting.track_id == track["track_id"])
                }
            analysed = sorted(f - first for f in own if 0 <= f - first < frames)  # frames with the person's box
            for offset in analysed[:: max(1, len(analysed) // 20)]:
                clip.set(cv2.CAP_PROP_POS_FRAMES, offset)
                source.set(cv2.CAP_PROP_POS_FRAMES, first + offset)
                (ok_a, shown), (ok_b, original) = clip.read(), source.read()
                if not (ok_a and ok_b):
                    continue
                people = detector.detect([original])[0]
                boxes = people.xyxy[people.conf >= 0.5]
                others = boxes[box_iou(boxes, [own[first + offset]])[:, 0] < 0.2] if len(boxes) else boxes
                for x1, y1, x2, y2 in others.astype(int):
                    region = (slice(max(0, y1), y2), slice(max(0, x1), x2))
                    before, after = _sharpness(original[region]), _sharpness(shown[region])
                    if before > 20:  # a person with detail to hide
                        assert after < 0.35 * before, (track["track_id"], first + offset, before, after)
                        checked += 1
    assert checked >= 5  # bystanders were there, and every one of them is blurred

    plain = export_identity(db, identity.id, tmp_path / "original", redact=False)
    assert not json.loads(plain.manifest_path.read_text())["redaction"]["bystanders_blurred"]
    crops = sorted((tmp_path / "original" / "crops").rglob("*.jpg"))
    assert crops
    videos = {t["track_id"]: t["video"] for c in summary["cameras"] for t in c["tracks"]}
    with db.session() as session:
        for crop_path in crops[:5]:
            sighting = session.get(Sighting, int(crop_path.stem.rsplit("sighting", 1)[1]))
            capture = cv2.VideoCapture(videos[sighting.track_id])
            capture.set(cv2.CAP_PROP_POS_FRAMES, sighting.frame_index)
            ok, frame = capture.read()
            crop = cv2.imread(str(crop_path))
            x1, y1 = int(sighting.x1), int(sighting.y1)
            original = frame[y1 : y1 + crop.shape[0], x1 : x1 + crop.shape[1]].astype(float)
            assert ok and abs(original - crop.astype(float)).mean() < 3.0  # the source pixels (JPEG 95)
