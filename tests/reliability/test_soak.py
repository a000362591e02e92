"""Multi-process soak (issue 12): a writer re-ingesting a video in a loop, a reader reopening the database and
searching, and a reviewer giving feedback, all at once for a bounded time (``REID_APP_SOAK_SECONDS``, default
12; set it to hours for a real soak). Zero failed operations, an intact database, and the same counts as a sequential
run."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from tests.conftest import LAB, ROOT, real_weights_args, run_cli

pytestmark = pytest.mark.slow


def _counts(db) -> dict:
    con = sqlite3.connect(db)
    try:
        return {
            table: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("videos", "tracks", "sightings", "embeddings")
        }
    finally:
        con.close()


def test_writer_reader_and_reviewer_processes_at_once_fail_nothing(tmp_path):
    seconds = os.environ.get("REID_APP_SOAK_SECONDS", "12")
    db = tmp_path / "soak.db"
    for video, duration in (("cam1", "6"), ("cam0", "3")):
        result = run_cli(
            "ingest", LAB / f"{video}.mp4", "--db", db, "--fps", "2", "--duration", duration, *real_weights_args()
        )
        assert result.code == 0, result.stderr
    sequential = _counts(db)
    env = dict(os.environ, YOLO_VERBOSE="False")
    workers = {
        mode: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.reliability.soak_worker",
                mode,
                str(db),
                seconds,
                *([str(LAB / "cam0.mp4")] if mode == "writer" else []),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        for mode in ("writer", "searcher", "feedback")
    }
    reports = {}
    for mode, proc in workers.items():
        out, err = proc.communicate(timeout=float(seconds) + 240)
        assert proc.returncode == 0, err
        reports[mode] = json.loads(out.strip().splitlines()[-1])
    print(json.dumps(reports))
    assert all(r["failed"] == 0 for r in reports.values()), reports
    assert reports["writer"]["ok"] >= 2 and reports["searcher"]["ok"] >= 10 and reports["feedback"]["ok"] >= 10
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("SELECT count(*) FROM pair_feedback").fetchone()[0] == 0  # every verdict was forgotten
    assert con.execute("SELECT count(*) FROM videos WHERE status != 'complete'").fetchone()[0] == 0
    con.close()
    assert _counts(db) == sequential
