"""Retention of footage and what was found in it: everything older than a maximum age is removed from the
database (``storage.retention``), and the recordings reid-app made of it are deleted from disk. Files outside the
recordings folder (footage a user ingested) are never deleted."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from storage.database import Database
from storage.retention import PurgeResult, purge_videos_before

log = logging.getLogger(__name__)


@dataclass
class RetentionReport:
    """The outcome of :func:`apply_retention`: the cut-off (seconds since the epoch), the purge, the recording
    files deleted, and files that could not be deleted (path and reason)."""

    cutoff: float
    purge: PurgeResult
    files_deleted: list[str] = field(default_factory=list)
    files_failed: list[tuple[str, str]] = field(default_factory=list)


def apply_retention(db: Database, max_age_s: float, recordings_dir: Optional[Path], dry_run: bool = False,
                    clock: Callable[[], float] = time.time) -> RetentionReport:
    """Remove what is older than ``max_age_s`` seconds (footage that ended before ``clock() - max_age_s``).

    Rows go first, in one transaction with an audit entry; then the purged videos' files that lie inside
    ``recordings_dir`` are deleted (a file that cannot be deleted is reported, the rows stay gone).

    Raises:
        ValueError: ``max_age_s`` is not > 0.
    """
    if not max_age_s > 0:
        raise ValueError(f"maximum age must be > 0 seconds, got {max_age_s}")
    cutoff = clock() - max_age_s
    report = RetentionReport(cutoff, purge_videos_before(db, cutoff, dry_run))
    if dry_run or recordings_dir is None:
        return report
    root = Path(recordings_dir).expanduser().resolve()
    for _, path in report.purge.videos:
        file = Path(path).expanduser().resolve()
        if not file.is_relative_to(root):
            continue
        try:
            file.unlink(missing_ok=True)
            report.files_deleted.append(str(file))
        except OSError as exc:
            report.files_failed.append((str(file), exc.strerror or str(exc)))
            log.warning("retention: cannot delete %s (%s)", file, exc)
    return report
