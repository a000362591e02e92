"""Opening a reid-app database: checks that the file is ours, then SQLite in WAL mode with foreign keys on.

Any SQLAlchemy URL works (``postgresql://...``); a plain path means a SQLite file. Before anything is written, an
existing file is inspected read-only, so that a file of another program or of a newer reid-app is refused intact.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from reid_app.errors import DatabaseError
from storage.schema import APP_ID, SCHEMA_VERSION, UPGRADABLE_VERSIONS, Base, Meta

_SQLITE_HEADER = b"SQLite format 3\x00"


@dataclass
class Database:
    """An open database: the engine, a session factory and where it lives.

    Attributes:
        engine: the SQLAlchemy engine.
        sessions: factory of ``Session`` objects (``expire_on_commit=False``).
        location: the file path or URL, for messages.
    """

    engine: Engine
    sessions: sessionmaker
    location: str

    def session(self) -> Session:
        """A new ORM session; use as a context manager."""
        return self.sessions()

    def close(self) -> None:
        """Dispose of the engine's connections (checkpoints the WAL)."""
        self.engine.dispose()


def _inspect_existing_sqlite(path: Path) -> None:
    """Refuse a file that is not a reid-app SQLite database of a schema we understand. Reads only."""
    with path.open("rb") as fh:
        header = fh.read(len(_SQLITE_HEADER))
    if len(header) == 0:
        return  # an empty file: SQLite treats it as a new database
    if header != _SQLITE_HEADER:
        raise DatabaseError(f"database {path} is not a SQLite file (written by another program?); "
                            f"choose another --db path")
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not tables:
                return
            if "reid_meta" not in tables:
                shown = ", ".join(sorted(tables)[:5])
                raise DatabaseError(f"database {path} was written by another program (tables: {shown}); "
                                    f"choose another --db path")
            meta = dict(con.execute("SELECT key, value FROM reid_meta").fetchall())
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"database {path} is damaged or not a SQLite database ({exc}); "
                            f"choose another --db path") from exc
    if meta.get("app") != APP_ID:
        raise DatabaseError(f"database {path} was written by another program (app={meta.get('app')!r}); "
                            f"choose another --db path")
    try:
        version = int(meta.get("schema_version", "0"))
    except ValueError:
        version = -1
    if version > SCHEMA_VERSION:
        raise DatabaseError(f"database {path} has schema version {version}, newer than this reid-app understands "
                            f"({SCHEMA_VERSION}); upgrade reid-app to open it")
    if version != SCHEMA_VERSION and version not in UPGRADABLE_VERSIONS:
        raise DatabaseError(f"database {path} has schema version {meta.get('schema_version')!r}, which this "
                            f"reid-app cannot read (expected {SCHEMA_VERSION})")


def _prepare_sqlite_path(path: Path) -> None:
    if path.is_dir():
        raise DatabaseError(f"database path {path} is a directory; give a file name such as {path / 'reid.db'}")
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseError(f"cannot create database folder {parent}: {exc.strerror or exc}") from exc
    if not parent.is_dir():
        raise DatabaseError(f"cannot create database {path}: {parent} is not a directory")
    if path.exists():
        _inspect_existing_sqlite(path)
    else:
        try:  # probe that we may create files here; the probe file is removed at once
            probe = parent / f".{path.name}.probe"
            probe.touch()
            probe.unlink()
        except OSError as exc:
            raise DatabaseError(f"cannot create database {path}: {exc.strerror or exc}") from exc


def _set_sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def open_database(location: Union[str, Path], create: bool = True) -> Database:
    """Open (and create when missing) a reid-app database.

    Args:
        location: a SQLite file path, or any SQLAlchemy URL (contains ``://``).
        create: create the tables when the database is new; when False a missing SQLite file is an error.
            A database of an older schema listed in ``UPGRADABLE_VERSIONS`` is upgraded in place.

    Returns:
        An open :class:`Database`.

    Raises:
        DatabaseError: the path is a directory or cannot be created, the file is not SQLite, belongs to another
            program, or has a schema version this reid-app does not understand.
    """
    text = str(location)
    if "://" in text:
        url = text
    else:
        path = Path(text).expanduser().absolute()
        if not create and not path.exists():
            raise DatabaseError(f"database {path} does not exist; run 'reid-app ingest --db {path} VIDEO' first")
        _prepare_sqlite_path(path)
        url = f"sqlite:///{path}"
        text = str(path)
    try:
        engine = create_engine(url)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _set_sqlite_pragmas)
        Base.metadata.create_all(engine)
        sessions = sessionmaker(engine, expire_on_commit=False)
        with sessions.begin() as session:
            meta = {m.key: m.value for m in session.scalars(select(Meta))}
            if not meta:
                session.add_all([Meta(key="app", value=APP_ID),
                                 Meta(key="schema_version", value=str(SCHEMA_VERSION))])
            elif meta.get("app") == APP_ID and meta.get("schema_version") in map(str, UPGRADABLE_VERSIONS):
                # the tables added since were just created by create_all; only the version number is left
                session.merge(Meta(key="schema_version", value=str(SCHEMA_VERSION)))
            elif meta.get("app") != APP_ID or meta.get("schema_version") != str(SCHEMA_VERSION):
                raise DatabaseError(f"database {text} is not a reid-app database of schema {SCHEMA_VERSION}")
    except SQLAlchemyError as exc:
        raise DatabaseError(f"cannot open database {text}: {exc.orig if hasattr(exc, 'orig') else exc}") from exc
    return Database(engine=engine, sessions=sessions, location=text)
