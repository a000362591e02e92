"""Retention of footage and what was found in it: everything older than a maximum age is removed from the
database (``storage.retention``), and the recordings reid-app made of it are deleted from disk. Only files the
recorder wrote (listed in the database) inside the recordings folder are deleted: footage a user ingested, even
from inside that folder, never is."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from common.errors import UsageError
from storage.database import Database
from storage.recorded_files import forget_recorded, recorded_among
from storage.retention import PurgeResult, purge_videos_before

log = logging.getLogger(__name__)


@dataclass
class RetentionReport:
    """The outcome of :func:`apply_retention`: the cut-off (seconds since the epoch), the purge, the recording
    files deleted (with ``dry_run``: the files that would be deleted), and files that could not be deleted (path
    and reason)."""

    cutoff: float
    purge: PurgeResult
    files_deleted: list[str] = field(default_factory=list)
    files_failed: list[tuple[str, str]] = field(default_factory=list)


def recordings_to_delete(db: Database, purged_paths: list[str], recordings_dir: Optional[Path]) -> list[str]:
    """Those of the purged videos' files that reid-app's recorder wrote (``storage.recorded_files``) and that lie
    inside ``recordings_dir``: the only files retention deletes."""
    if recordings_dir is None:
        return []
    root = Path(recordings_dir).expanduser().resolve()
    ours = recorded_among(db, purged_paths)
    files = [str(Path(p).expanduser().resolve()) for p in purged_paths]
    return [f for f in dict.fromkeys(files) if f in ours and Path(f).is_relative_to(root)]


def apply_retention(
    db: Database,
    max_age_s: float,
    recordings_dir: Optional[Path],
    dry_run: bool = False,
    clock: Callable[[], float] = time.time,
) -> RetentionReport:
    """Remove what is older than ``max_age_s`` seconds (footage that ended before ``clock() - max_age_s``).

    Rows go first, in one transaction with an audit entry; then the purged videos' files that reid-app recorded
    and that lie inside ``recordings_dir`` are deleted (:func:`recordings_to_delete`; a file that cannot be
    deleted is reported, the rows stay gone). A file a user put into the folder is never deleted.

    Raises:
        UsageError: ``max_age_s`` is not > 0, or reaches back before the epoch.
    """
    if not max_age_s > 0:
        raise UsageError(f"maximum age must be > 0 seconds, got {max_age_s}")
    now = clock()
    if not max_age_s < now:
        raise UsageError(f"a maximum age of {max_age_s:.0f} s reaches back before 1970; nothing is that old")
    cutoff = now - max_age_s
    report = RetentionReport(cutoff, purge_videos_before(db, cutoff, dry_run))
    files = recordings_to_delete(db, [path for _, path in report.purge.videos], recordings_dir)
    if dry_run:
        report.files_deleted = files
        return report
    for file in files:
        try:
            Path(file).unlink(missing_ok=True)
            report.files_deleted.append(file)
        except OSError as exc:
            report.files_failed.append((file, exc.strerror or str(exc)))
            log.warning("retention: cannot delete %s (%s)", file, exc)
    forget_recorded(db, report.files_deleted)
    return report
