"""The command line as a user meets it: real processes, real footage, every bad input of the ingest issue."""

import hashlib

import pytest

from storage.database import open_database
from storage.reads import count_rows
from tests.conftest import assert_one_clear_error, real_weights_args, run_cli, sqlite_execute


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_ingest_then_search_lists_tracks_of_the_other_camera(lab_db):
    db = open_database(lab_db, create=False)
    from sqlalchemy import select

    from storage.schema import Camera, Track

    with db.session() as session:
        cam0_track = session.scalar(
            select(Track.id).join(Camera).where(Camera.name == "cam0", Track.descriptor.is_not(None)).limit(1)
        )
    db.close()
    result = run_cli("search", "--db", lab_db, "--track", cam0_track, "--top-k", "3", "--other-cameras")
    assert result.code == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if "│" in line and "cam" in line]
    assert 1 <= len(rows) <= 3
    assert all("cam1" in row and "cam0" not in row for row in rows)


@pytest.mark.slow
def test_summary_reports_every_camera(tmp_path, lab_cam0):
    db = tmp_path / "s.db"
    result = run_cli(
        "ingest", lab_cam0, "--camera", "entrance", "--db", db, "--duration", "1", "--fps", "2", *real_weights_args()
    )
    assert result.code == 0, result.stderr
    assert f"database: {db}" in result.stdout
    line = next(line for line in result.stdout.splitlines() if "entrance" in line)
    cells = [c.strip() for c in line.split("│") if c.strip()]
    assert cells[:3] == ["entrance", "done", "2"]
    assert int(cells[3]) >= 1 and int(cells[5]) >= 1  # tracks, embeddings
    again = run_cli(
        "ingest", lab_cam0, "--camera", "entrance", "--db", db, "--duration", "1", "--fps", "2", *real_weights_args()
    )
    assert again.code == 0 and "already ingested" in again.stderr and "skipped" in again.stdout


@pytest.mark.slow
def test_one_bad_video_among_good_ones_is_marked_and_the_rest_ingested(tmp_path, lab_cam1):
    db = tmp_path / "mixed.db"
    result = run_cli("ingest", tmp_path / "nowhere.mp4", lab_cam1, "--db", db, "--duration", "1", *real_weights_args())
    assert_one_clear_error(result, "nowhere.mp4", "does not exist")
    assert result.code == 1
    table = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.startswith("│")}
    assert "failed" in table["nowhere"] and "done" in table["cam1"]
    assert count_rows(open_database(db))["videos"] == 1


@pytest.mark.parametrize(
    "make_input,words",
    [
        (lambda d: d / "missing.mp4", ["missing.mp4", "does not exist"]),
        (lambda d: d, ["is a directory"]),
        (
            lambda d: (d / "text.mp4").write_text("hello\n" * 50) and d / "text.mp4",
            ["text.mp4", "not a readable video"],
        ),
        (lambda d: (d / "empty.mp4").touch() or d / "empty.mp4", ["empty.mp4", "empty"]),
    ],
)
def test_bad_video_inputs(tmp_path, make_input, words):
    folder = tmp_path / "in"
    folder.mkdir()
    db = tmp_path / "db.sqlite"
    open_database(db).close()
    result = run_cli("ingest", make_input(folder), "--db", db, *real_weights_args())
    assert_one_clear_error(result, *words)
    assert count_rows(open_database(db))["videos"] == 0


@pytest.mark.slow
def test_zero_frame_and_truncated_videos(tmp_path, lab_cam0):
    from tests.factories import make_truncated_streamable_copy, make_zero_frame_video

    zero = make_zero_frame_video(tmp_path / "zero.mp4")
    result = run_cli("ingest", zero, "--db", tmp_path / "z.db", *real_weights_args())
    assert_one_clear_error(result, "zero.mp4")
    half = tmp_path / "half.mp4"
    data = lab_cam0.read_bytes()
    half.write_bytes(data[: len(data) // 2])  # index at the end: nothing is decodable
    result = run_cli("ingest", half, "--db", tmp_path / "h.db", *real_weights_args())
    assert_one_clear_error(result, "half.mp4", "truncated")
    assert result.code == 1
    # index at the front: the decodable half is ingested and the summary says the file was cut short
    cut = make_truncated_streamable_copy(lab_cam0, tmp_path / "cut.mp4")
    result = run_cli("ingest", cut, "--db", tmp_path / "c.db", "--fps", "1", *real_weights_args())
    assert result.code == 0 and "Traceback" not in result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("│ cut"))
    assert "done" in row and "truncated" in result.stdout


def test_bad_database_locations_and_files_are_refused_intact(tmp_path, lab_cam0):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_one_clear_error(run_cli("ingest", lab_cam0, "--db", blocker / "x.db", *real_weights_args()), "cannot create")
    other = tmp_path / "other.db"
    sqlite_execute(other, "CREATE TABLE contacts (name TEXT)")
    before = _digest(other)
    assert_one_clear_error(
        run_cli("ingest", lab_cam0, "--db", other, *real_weights_args()), "other.db", "another program"
    )
    assert _digest(other) == before
    newer = tmp_path / "newer.db"
    open_database(newer).close()
    sqlite_execute(newer, "UPDATE reid_meta SET value = '99' WHERE key = 'schema_version'")
    before = _digest(newer)
    assert_one_clear_error(run_cli("ingest", lab_cam0, "--db", newer, *real_weights_args()), "newer")
    assert _digest(newer) == before


def test_missing_and_corrupt_weights(tmp_path, lab_cam0):
    db = tmp_path / "w.db"
    result = run_cli(
        "ingest", lab_cam0, "--db", db, "--detector", tmp_path / "nope_openvino_model", "--reid", real_weights_args()[3]
    )
    assert_one_clear_error(result, "nope_openvino_model", "does not exist")
    corrupt = tmp_path / "reid.onnx"
    corrupt.write_bytes(b"\x08\x01garbage")
    result = run_cli("ingest", lab_cam0, "--db", db, "--detector", real_weights_args()[1], "--reid", corrupt)
    assert_one_clear_error(result, "reid.onnx", "corrupt")
    # a name found nowhere, offline: the message lists where it looked
    result = run_cli("ingest", lab_cam0, "--db", db, "--reid", "my-reid-model", env={"REID_APP_WEIGHTS": str(tmp_path)})
    assert_one_clear_error(result, "my-reid-model", str(tmp_path), "REID_APP_WEIGHTS")
    assert not db.exists() or count_rows(open_database(db))["videos"] == 0


@pytest.mark.parametrize(
    "args,words",
    [
        (["--fps", "0"], ["--fps", "greater than 0"]),
        (["--fps", "-3"], ["--fps"]),
        (["--fps", "fast"], ["--fps", "not a number"]),
        (["--device", "tpu"], ["tpu"]),
        (["--start", "yesterday"], ["--start", "yesterday"]),
    ],
)
def test_bad_option_values(tmp_path, lab_cam0, args, words):
    result = run_cli("ingest", lab_cam0, "--db", tmp_path / "o.db", *args, *real_weights_args())
    assert_one_clear_error(result, *words)
    assert not (tmp_path / "o.db").exists()


def test_search_errors_are_clear(tmp_path, lab_db):
    assert_one_clear_error(run_cli("search", "--db", tmp_path / "none.db", "--track", "1"), "does not exist")
    assert_one_clear_error(run_cli("search", "--db", lab_db, "--track", "99999"), "track 99999")
    assert_one_clear_error(run_cli("search", "--db", lab_db), "exactly one")
    assert_one_clear_error(run_cli("search", "--db", lab_db, "--track", "x"), "x")


def test_help_explains_the_commands():
    result = run_cli("ingest", "--help")
    assert result.code == 0
    for option in (
        "--db",
        "--camera",
        "--device",
        "--fps",
        "--detector",
        "--detector-size",
        "--reid",
        "--batch-size",
        "--start",
        "--force",
    ):
        assert option in result.stdout


def test_every_help_prints_its_text_as_written():
    from reid_app.cli import cli

    def commands(group, path=()):
        for name, command in getattr(group, "commands", {}).items():
            yield path + (name,)
            yield from commands(command, path + (name,))

    paths = list(commands(cli))
    assert ("ingest",) in paths and ("feedback", "split") in paths
    for path in [()] + paths:
        shown = run_cli(*path, "--help")
        assert shown.code == 0 and "%%" not in shown.stdout, (path, shown.stdout)


@pytest.mark.parametrize("size", ["100", "1000", "2048"])
def test_a_detector_size_that_is_no_multiple_of_32_in_range_is_refused_before_anything_is_stored(
    tmp_path, lab_cam0, size
):
    result = run_cli("ingest", lab_cam0, "--db", tmp_path / "x.db", "--detector-size", size)
    assert_one_clear_error(result, "--detector-size", size)
    assert not (tmp_path / "x.db").exists()


@pytest.mark.slow
def test_the_pose_weights_are_recorded_absolute_like_the_detector(tmp_path, lab_cam0, monkeypatch):
    from pathlib import Path

    from storage.model_registry import ingest_models
    from tests.conftest import POSE_DETECTOR, WEIGHTS, _require

    pose = _require(POSE_DETECTOR)
    monkeypatch.chdir(pose.parent)  # given relative to where the user stands, as a user types it
    db = tmp_path / "p.db"
    # The default detector is found by name in the weights folder (CI sets no REID_APP_WEIGHTS of its own).
    result = run_cli(
        "ingest",
        lab_cam0,
        "--db",
        db,
        "--duration",
        "1",
        "--fps",
        "2",
        "--pose",
        pose.name,
        env={"REID_APP_WEIGHTS": str(WEIGHTS)},
    )
    assert result.code == 0, result.stderr
    database = open_database(db)
    recorded = ingest_models(database)
    database.close()
    assert recorded["pose"] == str(pose.absolute()) and Path(recorded["detector"]).is_absolute()


def test_an_error_quoting_a_value_with_a_line_break_stays_one_line(tmp_path):
    result = run_cli("ingest", tmp_path / "x.mp4", "--fps", "5\nfps", "--db", tmp_path / "x.db")
    assert result.code == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "'5\\nfps' is not a number" in result.stderr and not (tmp_path / "x.db").exists()
