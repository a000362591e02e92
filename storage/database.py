"""Opening a reid-app database: checks that the file is ours and sound, then SQLite in WAL mode with foreign keys.

A location is a SQLite file path or a SQLAlchemy URL (``sqlite:////abs/path.db``, ``postgresql://...``); a
``sqlite://`` URL is treated exactly as its path. Before anything is written, an existing file is inspected through
SQLite itself (never a Python file handle: on POSIX, closing any descriptor of a file drops every lock the process
holds on it, including its live SQLite connections'; SQLite's "How To Corrupt An SQLite Database File", section
2.2) and checked with ``PRAGMA quick_check``, so a file of another program, of a newer reid-app, or a damaged one is
refused intact. A new database is built under a temporary name and moved into place only when whole, so a failure
(disk full) never leaves a half-made file behind.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Union

from sqlalchemy import create_engine, event, inspect, select, text, update
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from common.errors import DatabaseError, setting
from common.redaction import redact_text, redact_url
from common.settings import DatabaseLocation
from storage.schema import ADDED_COLUMNS, APP_ID, SCHEMA3_TABLES, SCHEMA_VERSION, UPGRADABLE_VERSIONS, Base, Meta


@dataclass
class Database:
    """An open database: the engine, a session factory and where it lives.

    Attributes:
        engine: the SQLAlchemy engine.
        sessions: factory of ``Session`` objects (``expire_on_commit=False``).
        location: the file path or URL as shown (``common.redaction.redact_url``: no password or token), for
            messages, titles, reports and anything stored.
        path: the SQLite file, or None for a server database.
        url: the location as given, password included: only for opening another connection to the same
            database (a worker process, a live session); never shown or stored.
    """

    engine: Engine
    sessions: sessionmaker
    location: str
    path: Optional[Path] = None
    url: str = field(default="", repr=False)

    def session(self) -> Session:
        """A new ORM session; use as a context manager."""
        return self.sessions()

    @contextmanager
    def snapshot(self) -> Iterator[Session]:
        """A read-only session whose queries all see one consistent state of the database, however many
        statements they take and whatever other processes commit meanwhile (SQLite: one explicit read
        transaction, WAL snapshot isolation; other engines: REPEATABLE READ). Nothing written in it is kept."""
        with self.engine.connect() as connection:
            if self.engine.dialect.name == "sqlite":
                connection.exec_driver_sql("BEGIN")  # the sqlite3 module would run each SELECT on its own
            else:
                connection = connection.execution_options(isolation_level="REPEATABLE READ")
            try:
                with Session(bind=connection) as session:
                    yield session
            finally:
                connection.rollback()

    @contextmanager
    def exclusive(self) -> Iterator["Database"]:
        """This database as one transaction that holds the write lock from its start (:func:`lock_for_writing`):
        everything read and written through the :class:`Database` it yields (its sessions) is one atomic unit,
        committed at the end of the block and rolled back when the block raises. For check-then-write actions
        (feedback verdicts, undo) that two processes must not interleave."""
        with self.engine.connect() as connection:
            transaction = connection.begin()
            try:
                with Session(bind=connection) as session:
                    lock_for_writing(session)
                yield Database(
                    engine=self.engine,
                    location=self.location,
                    path=self.path,
                    url=self.url,
                    sessions=sessionmaker(
                        bind=connection, expire_on_commit=False, join_transaction_mode="rollback_only"
                    ),
                )
            except BaseException:
                transaction.rollback()
                raise
            transaction.commit()

    def close(self) -> None:
        """Dispose of the engine's connections (checkpoints the WAL)."""
        self.engine.dispose()


def sqlite_path(location: Union[str, Path]) -> Optional[Path]:
    """The SQLite file a location names (a plain path or a ``sqlite:///`` URL), absolute; None for a server URL.

    Raises:
        DatabaseError: a malformed URL, or an in-memory SQLite URL (nothing would be kept).
    """
    given = DatabaseLocation.of(location)
    if given.file is not None:
        return given.file.absolute()
    text_ = given.value
    try:
        url = make_url(text_)
    except (ArgumentError, ValueError):
        # the parser's own words may quote a piece of the password (a bad port is often one): not shown
        raise DatabaseError(
            f"{setting('db')} {redact_url(text_)!r} is not a database URL; give a file path or a URL such as "
            f"sqlite:////abs/path/reid.db or postgresql://user:password@host:5432/db "
            f"(characters such as @ : / # in a password percent-encoded)"
        ) from None
    if url.get_backend_name() != "sqlite":
        return None
    if not url.database or url.database == ":memory:":
        raise DatabaseError(
            f"{setting('db')} {redact_url(text_)!r} is an in-memory database, which keeps nothing; give a file path"
        )
    return Path(url.database).expanduser().absolute()


def on_read_only_medium(path: Path) -> bool:
    """True when ``path`` (a database file) or its folder cannot be written: a read-only mount or disk, or
    permissions (``access(2)`` reports ``EROFS`` even to root)."""
    return not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK))


def _ro_uri(path: Path) -> str:
    # on a medium nothing can write to, SQLite cannot make the WAL index (-shm): immutable opens it without one
    return f"{path.as_uri()}?mode=ro" + ("&immutable=1" if on_read_only_medium(path) else "")


def _ro_connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(_ro_uri(path), uri=True, timeout=30)


def _is_half_made(con: sqlite3.Connection, tables: set[str]) -> bool:
    """A database an interrupted creation left behind: our tables, no facts in reid_meta, no rows anywhere."""
    ours = {t.name for t in Base.metadata.sorted_tables} | {"alembic_version"}
    if not tables <= ours or con.execute("SELECT count(*) FROM reid_meta").fetchone()[0]:
        return False
    return all(con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] == 0 for t in tables - {"alembic_version"})


def inspect_sqlite(path: Path) -> str:
    """Refuse a file that is not a sound reid-app SQLite database of a schema we understand. Reads only, through
    SQLite (no Python file handle on the database).

    Returns:
        ``new`` for an empty or half-made database (to be created), ``ours`` for a reid-app database.

    Raises:
        DatabaseError: not a regular file, not SQLite, another program's, a newer schema, or damaged
            (``PRAGMA quick_check`` finds a problem).
    """
    mode = path.stat().st_mode
    if not stat.S_ISREG(mode):
        raise DatabaseError(f"database {path} is not a regular file (a FIFO, device or socket); give a file path")
    if path.stat().st_size == 0:
        return "new"
    try:
        con = _ro_connect(path)
        try:
            tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not tables:
                return "new"
            if "reid_meta" not in tables:
                shown = ", ".join(sorted(tables)[:5])
                raise DatabaseError(
                    f"database {path} was written by another program (tables: {shown}); choose another "
                    f"{setting('db')} path"
                )
            if _is_half_made(con, tables):
                return "new"
            meta = dict(con.execute("SELECT key, value FROM reid_meta").fetchall())
            if meta.get("app") == APP_ID:
                problems = _problem_lines(row[0] for row in con.execute("PRAGMA quick_check(5)"))
                if problems != ["ok"]:
                    raise DatabaseError(
                        f"database {path} is damaged ({'; '.join(problems)[:300]}); nothing was written to it. "
                        f"Restore it from a backup, or see 'reid-app check --db {path}'"
                    )
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc) or "file is encrypted" in str(exc):
            raise DatabaseError(
                f"database {path} is not a SQLite file (written by another program?); choose another "
                f"{setting('db')} path"
            ) from None
        raise DatabaseError(
            f"database {path} is damaged or not a SQLite database ({exc}); nothing was written "
            f"to it; choose another {setting('db')} path or restore it from a backup"
        ) from None
    if meta.get("app") != APP_ID:
        raise DatabaseError(
            f"database {path} was written by another program (app={meta.get('app')!r}); choose another "
            f"{setting('db')} path"
        )
    try:
        version = int(meta.get("schema_version", "0"))
    except ValueError:
        version = -1
    if version > SCHEMA_VERSION:
        raise DatabaseError(
            f"database {path} has schema version {version}, newer than this reid-app understands "
            f"({SCHEMA_VERSION}); upgrade reid-app to open it"
        )
    if version != SCHEMA_VERSION and version not in UPGRADABLE_VERSIONS:
        raise DatabaseError(
            f"database {path} has schema version {meta.get('schema_version')!r}, which this "
            f"reid-app cannot read (expected {SCHEMA_VERSION})"
        )
    return "ours"


#: The PostgreSQL advisory lock key of :func:`lock_for_writing` ("reid" in ASCII).
_WRITER_LOCK = 0x72656964


def lock_for_writing(session: Union[Session, Connection]) -> None:
    """Make the transaction of ``session`` (an ORM session or a Core connection) a writer now, before it reads: on
    SQLite a no-op write takes the database's write lock (waiting up to ``busy_timeout``), so what the transaction
    reads next cannot change before it commits. On PostgreSQL a transaction-level advisory lock does the same for
    every transaction that calls this (processes on several machines matching new tracks to identities at once)."""
    bind = session.get_bind() if isinstance(session, Session) else session
    dialect = bind.dialect.name
    if dialect == "sqlite":
        session.execute(text("UPDATE reid_meta SET value = value WHERE 0"))
    elif dialect == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _WRITER_LOCK})


def _problem_lines(rows) -> list[str]:
    """SQLite's check output as one problem per line, without its ``*** in database main ***`` headings."""
    return [
        line.strip()
        for row in rows
        for line in str(row).splitlines()
        if line.strip() and not line.startswith("*** in database")
    ]


def integrity_problems(location: Union[str, Path], limit: int = 100) -> list[str]:
    """Full ``PRAGMA integrity_check`` of a SQLite database plus a foreign-key check (slow on big files: reads
    every page). Returns the problems found, empty when the database is sound.

    Raises:
        DatabaseError: the location is not a SQLite file that can be opened.
    """
    path = sqlite_path(location)
    if path is None:
        raise DatabaseError(
            f"{redact_url(location)}: only SQLite files can be checked here; use the server's own tools"
        )
    if not path.is_file():
        raise DatabaseError(f"database {path} does not exist")
    try:
        con = _ro_connect(path)
        try:
            problems = _problem_lines(row[0] for row in con.execute(f"PRAGMA integrity_check({int(limit)})"))
            problems = [] if problems == ["ok"] else problems
            problems += [
                f"row {row[1]} of {row[0]} refers to a missing {row[2]} row"
                for row in con.execute("PRAGMA foreign_key_check").fetchmany(limit)
            ]
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    return problems


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


def _set_sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _engine(url: str, read_only: bool = False) -> Engine:
    if url.startswith(("postgresql://", "postgres://")):  # the installed driver (psycopg 3), not SQLAlchemy's default
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    engine = create_engine(url)
    if engine.dialect.name == "sqlite" and not read_only:
        event.listen(engine, "connect", _set_sqlite_pragmas)
    return engine


def _add_missing_columns(connection) -> None:
    """In-place upgrade of tables made by schema 1 or 2: add the columns schema 3 added."""
    existing = inspect(connection)
    for version in sorted(ADDED_COLUMNS):
        for table, column, sql_type in ADDED_COLUMNS[version]:
            if column not in {c["name"] for c in existing.get_columns(table)}:
                connection.execute(text(f'ALTER TABLE "{table}" ADD COLUMN "{column}" {sql_type}'))


#: The newest Alembic revision (``storage/migrations/versions``); a database stamped with it needs no migration.
HEAD_REVISION = "0003_recorded_files_outbox"
#: The revision of schema 3, the schema of databases made before migrations existed.
BASELINE_REVISION = "0001_schema3"


def _alembic(connection, action: str, revision: str) -> None:
    """Run Alembic's ``upgrade`` or ``stamp`` to ``revision`` on ``connection`` (``storage/migrations``)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).resolve().parent / "migrations"))
    config.attributes["connection"] = connection
    getattr(command, action)(config, revision)


def _revision(connection) -> Optional[str]:
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _initialise(engine: Engine, sessions: sessionmaker, location: str) -> None:
    """Make a new database's schema, or bring an older one up to date (Alembic migrations, in one transaction).
    Processes opening the same database at once are serialised before anything is read (PostgreSQL: the advisory
    lock of :func:`lock_for_writing`; SQLite: its write lock), so only the first creates or migrates and the others
    find it done."""
    with engine.connect() as connection:  # the common case, an up-to-date database, takes no lock
        if _revision(connection) == HEAD_REVISION and inspect(connection).has_table("reid_meta"):
            meta = dict(connection.execute(select(Meta.key, Meta.value)).all())
            if meta.get("app") == APP_ID and meta.get("schema_version") == str(SCHEMA_VERSION):
                return
    with engine.begin() as connection:
        if engine.dialect.name != "sqlite" or inspect(connection).has_table("reid_meta"):
            lock_for_writing(connection)  # on SQLite a write to reid_meta; then look again, under the lock
        meta = (
            dict(connection.execute(select(Meta.key, Meta.value)).all())
            if inspect(connection).has_table("reid_meta")
            else {}
        )
        if not meta:  # a new database (or one whose creation was cut short): today's schema, stamped as newest
            Base.metadata.create_all(connection)
            connection.execute(
                Meta.__table__.insert(),
                [{"key": "app", "value": APP_ID}, {"key": "schema_version", "value": str(SCHEMA_VERSION)}],
            )
            _alembic(connection, "stamp", HEAD_REVISION)
            return
        if meta.get("app") != APP_ID:
            raise DatabaseError(f"database {location} is not a reid-app database")
        version = meta.get("schema_version")
        if version != str(SCHEMA_VERSION) and version not in map(str, UPGRADABLE_VERSIONS):
            raise DatabaseError(f"database {location} is not a reid-app database of schema {SCHEMA_VERSION}")
        revision = _revision(connection)
        if revision == HEAD_REVISION:
            return
        if revision is None:  # made before migrations existed (schema 1-3): bring it to schema 3 in place
            tables = [Base.metadata.tables[name] for name in SCHEMA3_TABLES]
            Base.metadata.create_all(connection, tables=tables)
            _add_missing_columns(connection)
            _alembic(connection, "stamp", BASELINE_REVISION)
        _alembic(connection, "upgrade", HEAD_REVISION)
        connection.execute(update(Meta).where(Meta.key == "schema_version").values(value=str(SCHEMA_VERSION)))


def _remove_quietly(*paths: Path) -> None:
    for p in paths:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def _create_sqlite(path: Path) -> None:
    """Build a new, empty reid-app database at ``path`` atomically: under a temporary name, then linked into
    place; another process that created ``path`` meanwhile wins and its file is kept."""
    temporary = path.with_name(f".{path.name}.creating-{os.getpid()}")
    side_files = [Path(f"{temporary}{suffix}") for suffix in ("", "-wal", "-shm", "-journal")]
    _remove_quietly(*side_files)
    engine = _engine(f"sqlite:///{temporary}")
    try:
        _initialise(engine, sessionmaker(engine, expire_on_commit=False), str(path))
        # the tables are in the WAL until a checkpoint copies them into the file; closing checkpoints silently, and
        # on a full disk that left a malformed file (the WAL is then removed), so checkpoint and check it here
        with engine.connect() as con:
            busy = con.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").first()[0]
            check = con.exec_driver_sql("PRAGMA quick_check").scalar()
        if busy or check != "ok":
            reason = "the disk is full" if nearly_full(path) else f"the new file does not check out ({check})"
            raise DatabaseError(f"cannot create database {path}: {reason}")
        engine.dispose()
        if path.exists() and path.stat().st_size == 0:
            os.replace(temporary, path)
        else:
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass  # created by another process just now; that one is inspected by the caller
    except (SQLAlchemyError, OSError) as exc:
        raise DatabaseError(f"cannot create database {path}: {storage_error_text(exc, path)}") from None
    finally:
        engine.dispose()
        _remove_quietly(*side_files)


def nearly_full(path: Optional[Path]) -> bool:
    """True when the disk holding ``path`` (a file or folder) has under 1 MiB free."""
    try:
        return path is not None and shutil.disk_usage(path if path.is_dir() else path.parent).free < 1 << 20
    except OSError:
        return False


def storage_error_text(exc: BaseException, path: Optional[Path] = None) -> str:
    """A one-line reason for a storage failure (disk full, I/O error, read-only, locked, damaged); ``path``, the
    database file, tells a full disk from other I/O errors (SQLite reports some ENOSPC as "disk I/O error")."""
    message = str(getattr(exc, "orig", None) or exc).lower()
    errno_ = getattr(exc, "errno", None)
    if (
        "disk is full" in message
        or errno_ == 28
        or "no space" in message
        or (("disk i/o" in message or errno_ == 5) and nearly_full(path))
    ):
        return "the disk is full; free some space and run the same command again"
    if "malformed" in message or "not a database" in message:
        return "the database file is damaged; restore it from a backup (see 'reid-app check')"
    if "readonly" in message or "read-only" in message or errno_ == 30:
        return "the database is read-only (file or folder permissions, or a read-only disk)"
    if "locked" in message or "busy" in message:
        return "the database is locked by another program for too long; try again"
    if "disk i/o" in message or errno_ in (5, 27) or "file too large" in message:
        return "an I/O error writing the database (disk failing, full, or a file size limit)"
    return redact_text(str(getattr(exc, "orig", None) or exc).splitlines()[0][:300])


def _open_read_only(path: Path, create: bool) -> Database:
    """A sound database on a read-only disk or folder, opened for reading (``create`` False: a command that only
    reads); a command that writes is told it is read-only, never that the file is damaged."""
    if create:
        raise DatabaseError(
            f"database {path} is read-only (a read-only disk or mount, or its file or folder may not "
            f"be written); reid-app can only read it there: copy it to a writable folder to add to it"
        )
    wal = Path(f"{path}-wal")
    if wal.exists() and wal.stat().st_size > 0:  # immutable reads would silently miss what the log holds
        raise DatabaseError(
            f"database {path} is read-only and its write-ahead log {wal.name} holds changes that "
            f"cannot be read there; copy both files to a writable folder and open the copy"
        )
    if inspect_sqlite(path) != "ours":
        raise DatabaseError(f"database {path} is read-only and empty; nothing to read")
    engine = _engine("sqlite:///" + _ro_uri(path).replace("file://", "file:", 1) + "&uri=true", read_only=True)
    try:
        with engine.connect() as con:
            revision = _revision(con)
    except SQLAlchemyError as exc:
        raise DatabaseError(f"cannot open database {path}: {storage_error_text(exc, path)}") from None
    if revision != HEAD_REVISION:
        raise DatabaseError(
            f"database {path} is of an older schema and read-only, so it cannot be upgraded; copy "
            f"it to a writable folder and open it there"
        )
    return Database(
        engine=engine,
        sessions=sessionmaker(engine, expire_on_commit=False),
        location=str(path),
        path=path,
        url=str(path),
    )


def open_database(location: Union[str, Path], create: bool = True) -> Database:
    """Open (and create when missing) a reid-app database.

    Args:
        location: a SQLite file path, a ``sqlite:///`` URL, or any other SQLAlchemy URL.
        create: create the database when it is new; when False a missing SQLite file is an error.
            A database of an older schema listed in ``UPGRADABLE_VERSIONS`` is upgraded in place.

    Returns:
        An open :class:`Database`.

    Raises:
        DatabaseError: the path is a directory, a special file or cannot be created; the file is not SQLite,
            belongs to another program, is damaged, or has a schema version this reid-app does not understand.
    """
    text_ = str(location)
    path = sqlite_path(text_)
    if path is not None:
        if not create and not path.exists():
            raise DatabaseError(f"database {path} does not exist; run 'reid-app ingest --db {path} VIDEO' first")
        if path.exists() and on_read_only_medium(path):
            return _open_read_only(path, create)
        _prepare_sqlite_path(path)
        if not path.exists() or inspect_sqlite(path) == "new":
            _create_sqlite(path)
            inspect_sqlite(path)
        url, text_ = f"sqlite:///{path}", str(path)
    else:
        url = text_
    shown = text_ if path is not None else redact_url(text_)  # a file path holds no credentials
    try:
        engine = _engine(url)
        sessions = sessionmaker(engine, expire_on_commit=False)
        _initialise(engine, sessions, shown)
    except SQLAlchemyError as exc:
        raise DatabaseError(f"cannot open database {shown}: {storage_error_text(exc, path)}") from None
    except ImportError as exc:
        raise DatabaseError(
            f"cannot open database {shown}: its driver is not installed ({exc.name or exc}); "
            f"install it, e.g. 'pip install \"psycopg[binary]\"' for postgresql:// (psycopg 3, "
            f"which reid-app uses)"
        ) from None
    return Database(engine=engine, sessions=sessions, location=shown, path=path, url=text_)
