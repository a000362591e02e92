"""Secrets stay secret: a password in every URL form (userinfo, path, query; camera, database and webhook URLs)
never reaches an output stream, a file name, a file's bytes or the database, on the real paths: live ingest from a
real RTSP server, PostgreSQL ingest, listing and evidence export, and the failing-database paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.redaction import name_from_url, redact_url
from tests.conftest import LAB, real_weights_args, run_cli, run_cli_process

SECRET = "Pw7zQx"


@pytest.mark.parametrize(
    "url, shown, name",
    [
        (f"rtsp://admin:{SECRET}@10.0.0.5:554/Streaming/101", "rtsp://***@10.0.0.5:554/Streaming/101", "101"),
        (f"rtsp://admin:{SECRET}#1@host/cam1", "rtsp://***@host/cam1", "cam1"),
        (f"rtsp://admin:a/b?{SECRET}@host:554/cam1", "rtsp://***@host:554/cam1", "cam1"),
        (
            f"rtsp://host/user=admin&password={SECRET}&channel=1&stream=0.sdp",
            "rtsp://host/user=***&password=***&channel=1&stream=0.sdp",
            "channel=1&stream=0",
        ),
        (
            f"rtsp://host:554/user=admin_password={SECRET}_channel=1_stream=0.sdp?real_stream",
            "rtsp://host:554/user=***_password=***_channel=1_stream=0.sdp?real_stream",
            "channel=1_stream=0",
        ),
        (
            f"http://cam/snapshot.cgi?loginuse=admin&loginpas={SECRET}",
            "http://cam/snapshot.cgi?loginuse=***&loginpas=***",
            "snapshot",
        ),
        (f"rtsp://host/live#token={SECRET}", "rtsp://host/live#token=***", "live"),
        (f"postgresql://reid:{SECRET}@db.local:5432/site", "postgresql://***@db.local:5432/site", "site"),
        (
            f"postgresql://db.local/site?password={SECRET}&sslmode=require",
            "postgresql://db.local/site?password=***&sslmode=require",
            "site",
        ),
    ],
)
def test_every_url_form_is_shown_and_named_without_its_secret(url, shown, name):
    assert redact_url(url) == shown and name_from_url(url) == name
    assert SECRET not in redact_url(url) and SECRET not in name_from_url(url)


def _leaks(*texts: str, folders: tuple[Path, ...] = ()) -> list[str]:
    """Where the secret shows: in a text, a file or folder name, or a file's bytes."""
    found = [f"output {i}" for i, text in enumerate(texts) if SECRET in text]
    for folder in folders:
        for path in Path(folder).rglob("*"):
            if SECRET in str(path.relative_to(folder)):
                found.append(f"name {path}")
            elif path.is_file() and SECRET.encode() in path.read_bytes():
                found.append(f"bytes of {path}")
    return found


@pytest.mark.slow
def test_live_ingest_with_credentials_in_userinfo_path_and_query_leaks_nothing(rtsp_server, cam1_live_clip, tmp_path):
    """Three cameras as DVRs take credentials; what is printed, recorded, named and stored holds none."""
    dvr_path = f"user=admin&password={SECRET}&channel=1&stream=0.sdp"
    open_server = rtsp_server((), files={"cam1": cam1_live_clip, dvr_path: cam1_live_clip})
    locked = rtsp_server((), files={"door": cam1_live_clip}, user="admin", password=SECRET)
    urls = [
        locked.url("door", f"admin:{SECRET}@"),
        f"rtsp://127.0.0.1:{open_server.port}/{dvr_path}",
        f"rtsp://127.0.0.1:{open_server.port}/cam1?user=admin&password={SECRET}",
    ]
    work = tmp_path / "site"
    result = run_cli_process(
        "ingest",
        *urls,
        "--duration",
        "4",
        "--db",
        work / "site.db",
        "--recordings",
        work / "recordings",
        *real_weights_args(),
        timeout=600,
    )
    assert result.code == 0, result.stderr
    assert "channel_1_stream_0" in result.stdout  # the DVR's camera got a name from its non-secret parameters
    assert _leaks(result.stdout, result.stderr, folders=(work,)) == []
    listed = run_cli("cameras", "--db", work / "site.db")
    assert listed.code == 0 and len(listed.stdout.splitlines()) > 3 and _leaks(listed.stdout) == []


@pytest.mark.slow
def test_a_postgresql_password_reaches_no_output_report_or_file(pg_url, tmp_path):
    url = pg_url.replace("postgresql://reid@", f"postgresql://reid:{SECRET}@")  # the test server trusts loopback
    assert SECRET in url
    outputs = []
    ingested = run_cli(
        "ingest", LAB / "cam0.mp4", LAB / "cam1.mp4", "--db", url, "--duration", "4", *real_weights_args()
    )
    assert ingested.code == 0, ingested.stderr
    outputs += [ingested.stdout, ingested.stderr]
    assert "database: postgresql://***@" in ingested.stdout
    for args in (("cameras",), ("identities",), ("audit",)):
        shown = run_cli(*args, "--db", url)
        assert shown.code == 0, shown.stderr
        outputs += [shown.stdout, shown.stderr]
    identity = next(
        line.split("│")[1].strip()
        for line in run_cli("identities", "--db", url).stdout.splitlines()
        if line.startswith("│") and line.split("│")[1].strip().isdigit()
    )
    exported = run_cli("export-identity", "--db", url, "--identity", identity, "--out", tmp_path / "case")
    assert exported.code == 0, exported.stderr
    outputs += [exported.stdout, exported.stderr]
    assert (tmp_path / "case" / "manifest.json").exists()
    # the failing paths: a server that is not there, a database that does not exist, a wrong scheme
    port = int(pg_url.rsplit(":", 1)[1].split("/")[0])
    for bad in (
        f"postgresql://reid:{SECRET}@127.0.0.1:1/site",
        url.rsplit("/", 1)[0] + "/no_such_db",
        f"nosuchdriver://reid:{SECRET}@127.0.0.1:{port}/x",
        f"postgresql://reid:{SECRET}@[::1/x",
    ):
        failed = run_cli("cameras", "--db", bad)
        assert failed.code == 2 and "Traceback" not in failed.stderr, failed.stderr
        outputs += [failed.stdout, failed.stderr]
    assert _leaks(*outputs, folders=(tmp_path / "case",)) == []
    from storage.database import open_database

    db = open_database(url)
    try:
        with db.engine.connect() as con:
            rows = [
                str(tuple(r))
                for table in ("audit_log", "reid_meta", "cameras", "videos", "models")
                for r in con.exec_driver_sql(f"SELECT * FROM {table}")
            ]
    finally:
        db.close()
    assert rows and _leaks("\n".join(rows)) == []
