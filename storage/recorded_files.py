"""The files reid-app's recorder wrote (``recorded_files``): retention deletes a file only when it is listed here,
so footage a user copied into the recordings folder is never deleted."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from storage.database import Database
from storage.schema import RecordedFile


def _key(path: str | Path) -> str:
    return str(Path(path).expanduser().resolve())


def note_recorded(session: Session, path: str | Path, camera: str) -> None:
    """In ``session``'s transaction: list ``path`` (made absolute) as written by the recorder for ``camera``."""
    key = _key(path)
    if session.scalar(select(RecordedFile.id).where(RecordedFile.path == key)) is None:
        session.add(RecordedFile(path=key, camera=camera))


def recorded_among(db: Database, paths: Iterable[str | Path]) -> set[str]:
    """The absolute forms of those of ``paths`` the recorder wrote."""
    keys = {_key(p) for p in paths}
    with db.session() as session:
        return (
            {p for (p,) in session.execute(select(RecordedFile.path).where(RecordedFile.path.in_(keys)))}
            if keys
            else set()
        )


def forget_recorded(db: Database, paths: Iterable[str | Path]) -> None:
    """Drop deleted files from the list."""
    keys = [_key(p) for p in paths]
    if keys:
        with db.sessions.begin() as session:
            session.execute(delete(RecordedFile).where(RecordedFile.path.in_(keys)))
