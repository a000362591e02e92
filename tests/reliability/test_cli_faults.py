"""The command line under bad values, damaged databases and odd locations: one line and a clean exit, nothing
stored changed (issue 12: defects 3, 7, 8, 11 and 13). In this process, on copies of a real lab database."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import threading

import pytest

from tests.conftest import ROOT, copy_db, sqlite_execute
from tests.reliability.cli import assert_clean_outcome, assert_one_error, run_main
from tests.reliability.damage import damage_database, huge_png

BIG = str(2**63)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "value,words",
    [
        ("1e300", ["outside 1970-2200"]),
        ("1764670000000", ["looks like milliseconds"]),
        ("nan", ["not a finite time"]),
        ("-5", ["outside 1970-2200"]),
        ("9999-12-31T23:59:59", ["outside 1970-2200"]),
        ("yesterday", ["is not a time"]),
    ],
)
def test_start_times_out_of_range_are_refused_before_anything_is_stored(tmp_path, lab_cam0, value, words):
    result = run_main("ingest", lab_cam0, "--db", tmp_path / "x.db", "--start", value)
    assert_one_error(result, "--start", *words)
    assert not (tmp_path / "x.db").exists()


def test_a_far_future_time_stored_by_an_older_version_breaks_no_command(tmp_path, lab_db):
    db = copy_db(lab_db, tmp_path / "db")
    sqlite_execute(db, "UPDATE videos SET start_time = 1e300")
    listing = run_main("identities", "--db", db)
    assert_clean_outcome(listing, 0)
    assert "s since 1970" in listing.stdout
    assert_clean_outcome(run_main("search", "--db", db, "--track", "1"), 0)
    assert_clean_outcome(run_main("export-identity", "--db", db, "--identity", "1", "--out", tmp_path / "e"), 0)


@pytest.mark.parametrize(
    "args",
    [
        ["search", "--track", BIG],
        ["search", "--sighting", "-1"],
        ["feedback", "confirm", "1", BIG],
        ["feedback", "split", BIG, "1"],
        ["export-identity", "--identity", BIG, "--out", "{tmp}/e"],
        ["audit", "--limit", BIG],
        ["identities", "--identity", "0"],
        ["search", "--track", "1", "--top-k", "0"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_ids_and_counts_out_of_range_are_one_line(tmp_path, lab_db, args):
    db = copy_db(lab_db, tmp_path / "db")
    before = _sha(db)
    result = run_main(*[a.format(tmp=tmp_path) for a in args], "--db", db)
    assert_one_error(result, "range")
    assert _sha(db) == before


@pytest.mark.parametrize("option,value", [("--clip-margin", "nan"), ("--clip-margin", "inf")])
def test_non_finite_numbers_are_one_line(tmp_path, lab_db, option, value):
    result = run_main(
        "export-identity",
        "--db",
        copy_db(lab_db, tmp_path / "db"),
        "--identity",
        "1",
        "--out",
        tmp_path / "e",
        option,
        value,
    )
    assert_one_error(result, option, "finite")


@pytest.mark.parametrize(
    "args",
    [
        ["identities"],
        ["search", "--track", "1"],
        ["feedback", "confirm", "1", "2"],
        ["cameras"],
        ["audit"],
        ["export-identity", "--identity", "1", "--out", "{tmp}/e"],
    ],
    ids=lambda a: a[0],
)
def test_a_damaged_database_is_refused_by_every_command_and_left_as_it_was(tmp_path, lab_db, args):
    damaged = damage_database(lab_db, tmp_path / "damaged.db")
    before = _sha(damaged)
    result = run_main(*[a.format(tmp=tmp_path) for a in args], "--db", damaged)
    assert_one_error(result, "is damaged", "nothing was written")
    assert _sha(damaged) == before
    assert not (tmp_path / "e").exists()


def test_check_reports_a_damaged_database_and_passes_a_sound_one(tmp_path, lab_db):
    damaged = damage_database(lab_db, tmp_path / "damaged.db")
    result = run_main("check", "--db", damaged)
    assert_one_error(result, "is damaged", "restore it from a backup")
    assert len(result.stderr.splitlines()) >= 2  # the problems themselves
    sound = run_main("check", "--db", copy_db(lab_db, tmp_path / "sound"))
    assert_clean_outcome(sound, 0)
    assert "ok (integrity and foreign keys checked)" in sound.stdout


def test_database_urls_are_kept_as_urls(tmp_path, lab_db, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = copy_db(lab_db, tmp_path / "db")
    result = run_main("cameras", "--db", f"sqlite:///{db}")
    assert_clean_outcome(result, 0)
    assert "cam0" in result.stdout
    monkeypatch.setenv("REID_APP_DB", "postgresql://nobody@127.0.0.1:1/reid")
    result = run_main("identities")
    assert_one_error(result, "postgresql://***@127.0.0.1:1/reid")  # the user name is not shown either
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db"]  # no ./sqlite: or ./postgresql: folder


@pytest.mark.slow
def _unblock_fifo_after(fifo, seconds: float) -> threading.Event:
    """If a command wrongly opens ``fifo`` for reading it blocks forever; after ``seconds`` this opens the writing
    end once (the reader then sees end of file and the test fails instead of hanging). Set the event to cancel."""
    done = threading.Event()

    def unblock():
        while not done.wait(seconds):
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:  # no reader is blocked on it
                pass

    threading.Thread(target=unblock, daemon=True).start()
    return done


def test_special_files_are_refused_at_once(tmp_path, lab_db):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    done = _unblock_fifo_after(fifo, 60)
    try:
        for code, args in (
            (2, ["search", "--db", copy_db(lab_db, tmp_path / "db"), "--image", fifo]),
            (2, ["cameras", "--db", fifo]),
            (1, ["ingest", "--db", tmp_path / "x.db", fifo]),  # 1: a bad video among the given
            (2, ["evaluate", "--dataset", "cuhk03-views", "--root", tmp_path, "--weights", fifo]),
        ):
            assert_one_error(run_main(*args), "not a regular file", code=code)
    finally:
        done.set()


@pytest.mark.slow
def test_a_huge_query_image_is_one_line(tmp_path, lab_db):
    result = run_main("search", "--db", copy_db(lab_db, tmp_path / "db"), "--image", huge_png(tmp_path / "h.png"))
    assert_one_error(result, "too large for a person crop")


def _unused_display() -> str:
    with socket.socket() as sock:  # a port nobody listens on: X display number = port - 6000
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"127.0.0.1:{port - 6000}" if port > 6000 else "127.0.0.1:59000"


@pytest.mark.slow
def test_gui_with_an_unreachable_display_says_so_instead_of_aborting(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    for display, platform in ((":987", None), (_unused_display(), "xcb")):
        env["DISPLAY"] = display
        if platform:
            env["QT_QPA_PLATFORM"] = platform
        proc = subprocess.run(
            [sys.executable, "-m", "reid_app.cli", "gui", "--db", str(tmp_path / "x.db")],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            cwd=ROOT,
        )
        assert proc.returncode == 2, proc.stderr  # Qt's abort was 134
        assert proc.stderr.strip().splitlines() == [
            f"reid-app: error: cannot connect to the display DISPLAY={display} (no X server answers there): run it "
            f"in a desktop session, over 'ssh -X', or use the command line ('reid-app --help')"
        ]
