"""A real PostgreSQL 15 server for the tests, from Debian's packages (``/usr/lib/postgresql/15/bin``): ``initdb`` in a
temporary folder, listening on loopback only, trust authentication, stopped and removed after the session. As root
(CI) it runs as the ``postgres`` user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Optional

import pytest

from tests.conftest import free_port

PG_BIN = Path(os.environ.get("REID_APP_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _as_server_user(args: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


def postgres_missing() -> Optional[str]:
    """None when a server can be started here, else why not."""
    if not (PG_BIN / "initdb").exists():
        return f"PostgreSQL server binaries are not in {PG_BIN} (Debian: apt-get install postgresql-15)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: PostgreSQL cannot be started as root"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "the psycopg driver is not installed"
    return None


class PostgresServer:
    """One server: :meth:`new_database` gives the URL of a fresh, empty database on it."""

    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="reid-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        subprocess.run(
            _as_server_user(
                [str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "reid", "--auth=trust", "-E", "UTF8", "--no-sync"]
            ),
            check=True,
            capture_output=True,
        )
        self.options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            f"-c synchronous_commit=off -c full_page_writes=off"
        )
        self.resume()

    def pause(self) -> None:
        """Stop the server keeping its data (an outage); :meth:`resume` starts it again."""
        subprocess.run(
            _as_server_user([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]),
            check=True,
            capture_output=True,
        )

    def resume(self) -> None:
        subprocess.run(
            _as_server_user(
                [
                    str(PG_BIN / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-o",
                    self.options,
                    "-w",
                    "-l",
                    str(self.folder / "server.log"),
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )

    def url(self, database: str) -> str:
        return f"postgresql://reid@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        subprocess.run(
            _as_server_user([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server():
    """A running PostgreSQL server for the session (skipped, with the reason, where none can be started)."""
    why = postgres_missing()
    if why:
        pytest.skip(why)
    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture
def pg_url(postgres_server) -> str:
    """The URL of a fresh, empty PostgreSQL database."""
    return postgres_server.new_database()
