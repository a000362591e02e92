"""Shared fixtures: paths to the real footage and weights in ../shared, a CLI runner, and one real ingest."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest_plugins = ["tests.postgres"]  # the postgres_server and pg_url fixtures

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
VIDEOS = SHARED / "data" / "videos"
WEIGHTS = SHARED / "weights"
LAB = VIDEOS / "lab_4cam"
POSE_DETECTOR = WEIGHTS / "yolov8n-pose_int8_openvino_model"
PLAIN_DETECTOR = WEIGHTS / "yolov8n_int8_openvino_model"
OSNET = WEIGHTS / "osnet_x0_25_msmt17.onnx"


@pytest.fixture(autouse=True, scope="session")
def _index_cache(tmp_path_factory):
    """Search indexes persist under a folder of the test session (subprocesses inherit it), not the user cache."""
    os.environ["REID_APP_INDEX_DIR"] = str(tmp_path_factory.mktemp("index-cache"))


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent: real footage and weights come from ../shared beside the repository")
    return path


@pytest.fixture
def lab_cam0() -> Path:
    return _require(LAB / "cam0.mp4")


@pytest.fixture
def lab_cam1() -> Path:
    return _require(LAB / "cam1.mp4")


@pytest.fixture
def pose_detector() -> Path:
    return _require(POSE_DETECTOR)


@pytest.fixture
def osnet() -> Path:
    return _require(OSNET)


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if "error" in line.lower()]


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sqlite_execute(path: Path, *statements: str) -> None:
    """Run SQL statements on a SQLite file directly, as another program would, and commit."""
    import sqlite3

    con = sqlite3.connect(path)
    try:
        for statement in statements:
            con.execute(statement)
        con.commit()
    finally:
        con.close()


def dead_owner() -> str:
    """A lease owner (``host:pid``) of this host whose process has exited, as a killed ingest leaves behind."""
    import socket

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return f"{socket.gethostname()}:{proc.pid}"


def run_cli(*args: str, env: dict | None = None, timeout: float = 300) -> CliResult:
    """Run ``reid-app ARGS`` in this process through click's ``CliRunner`` (no interpreter start and imports per
    case), exactly as the console script does: ``reid_app.cli.main`` with its error handling and exit codes.

    An exception that escapes ``main`` (a bug: users must never see a traceback) comes back as exit code 1 with
    the traceback on stderr, as a separate process would give. ``timeout`` is accepted for
    :func:`run_cli_process` compatibility and ignored.
    """
    import logging
    import traceback

    from click.testing import CliRunner

    from reid_app.cli import main

    full_env = {"YOLO_VERBOSE": "False", "COLUMNS": "200", **(env or {})}
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    argv = sys.argv
    runner = CliRunner()
    code = 0
    with runner.isolation(env=full_env) as (out, err, _):
        sys.argv = ["reid-app", *map(str, args)]
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except Exception:  # noqa: BLE001 - reported the way the interpreter would report it
            traceback.print_exc(file=sys.stderr)
            code = 1
        finally:
            sys.argv = argv
            sys.stdout.flush()
            sys.stderr.flush()
            stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    root.handlers[:] = handlers
    root.setLevel(level)
    return CliResult(code, stdout, stderr)


def run_cli_process(*args: str, env: dict | None = None, timeout: float = 300) -> CliResult:
    """Run ``reid-app ARGS`` as a user would, in a separate process (for what only a process shows: signals,
    the interpreter's exit, a process-wide resource limit)."""
    full_env = dict(os.environ, YOLO_VERBOSE="False", COLUMNS="200")
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "reid_app.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=ROOT,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def real_weights_args() -> list[str]:
    return ["--detector", str(_require(POSE_DETECTOR)), "--reid", str(_require(OSNET))]


@pytest.fixture(scope="session")
def lab_db(tmp_path_factory) -> Path:
    """A database made by a real CLI ingest of the first 4 s of lab cam0 and cam1 with the real weights."""
    for p in (LAB / "cam0.mp4", LAB / "cam1.mp4", POSE_DETECTOR, OSNET):
        _require(p)
    db = tmp_path_factory.mktemp("lab") / "lab.db"
    result = run_cli("ingest", LAB / "cam0.mp4", LAB / "cam1.mp4", "--db", db, "--duration", "4", *real_weights_args())
    assert result.code == 0, result.stderr
    return db


@pytest.fixture(scope="session")
def lab4_db(tmp_path_factory) -> Path:
    """A database made by a real CLI ingest of the first 15 s of all four lab cameras (read it, or copy it with
    ``copy_db`` before writing)."""
    videos = [_require(LAB / f"cam{i}.mp4") for i in range(4)]
    db = tmp_path_factory.mktemp("lab4") / "lab4.db"
    result = run_cli("ingest", *videos, "--db", db, "--duration", "15", *real_weights_args(), timeout=600)
    assert result.code == 0, result.stderr
    assert "identities:" in result.stdout
    return db


@pytest.fixture(scope="session")
def lab_default_db(tmp_path_factory) -> Path:
    """A database made by a real CLI ingest of the first 4 s of lab cam0 and cam1 with the shipped default re-id
    model (global + pose-guided part branches; read it, or copy it with ``copy_db`` before writing)."""
    for p in (LAB / "cam0.mp4", LAB / "cam1.mp4", POSE_DETECTOR):
        _require(p)
    db = tmp_path_factory.mktemp("lab-default") / "lab-default.db"
    result = run_cli(
        "ingest", LAB / "cam0.mp4", LAB / "cam1.mp4", "--db", db, "--duration", "4", "--detector", POSE_DETECTOR
    )
    assert result.code == 0, result.stderr
    return db


def copy_db(source: Path, target_dir: Path) -> Path:
    """A private copy of a SQLite database (through SQLite's backup API, so the WAL is included), for tests
    that write."""
    import sqlite3

    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / source.name
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    return target


@pytest.fixture
def db(tmp_path):
    """An empty reid-app database in the test's folder (a test module that needs another one defines its own
    ``db``: a synthetic site, a copy of the lab ingest)."""
    from storage.database import open_database

    database = open_database(tmp_path / "t.db")
    yield database
    database.close()


@pytest.fixture
def site_db(tmp_path):
    """A synthetic two-camera site of four people seen by both cameras at once, twelve sightings per track
    (``tests.factories.build_site``: no weights, no footage)."""
    from storage.database import open_database
    from tests.factories import build_site

    database = open_database(tmp_path / "site.db")
    build_site(database, people=4, cameras=2)
    yield database
    database.close()


def assert_one_clear_error(result, *words):
    """A user mistake: a non-zero exit, no traceback, exactly one error line on stderr, holding every word."""
    assert result.code != 0, result.stdout
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert len(result.error_lines) == 1, result.stderr
    assert not [
        line for line in result.stderr.splitlines() if line.strip() and "reid-app:" not in line and "━" not in line
    ], f"stray stderr lines: {result.stderr}"
    for word in words:
        assert word in result.error_lines[0], result.stderr


# The RTSP server's fixtures, for the live, cluster, reliability and ui tests alike (imported last: tests.rtsp
# imports this module's helpers).
from tests.rtsp import cam1_live_clip, rtsp_server, short_gop_clip  # noqa: E402, F401
