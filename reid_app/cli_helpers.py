"""Helpers shared by the CLI's command modules: times, re-id weights, clustering after ingest."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Optional

import click

from common.errors import UsageError, WeightsError
from common.settings import Settings, load_settings
from common.timefmt import format_time  # noqa: F401  (the CLI's tables and the app use it from here)

#: Latest wall-clock time accepted (2200-01-01T00:00:00Z, seconds since the epoch): later values are mistakes
#: such as epoch milliseconds, and would not fit the dates every table and export prints.
MAX_TIMESTAMP = 7258118400.0

#: A database id option or argument: 1 to 2^63 - 1 (SQLite's and PostgreSQL's BIGINT range).
DB_ID = click.IntRange(1, 2**63 - 1)


def parse_start_time(text: str, option: str = "--start") -> float:
    """Parse a time option's value: seconds since the epoch, or ISO 8601 (naive times are local time).

    Returns:
        Seconds since the epoch, in ``[0, MAX_TIMESTAMP]``.

    Raises:
        UsageError: neither form, not finite, before 1970 or after 2200 (a hint is given for milliseconds).
    """
    try:
        value = float(text)
    except ValueError:
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except (ValueError, OverflowError, OSError):
            raise UsageError(
                f"{option} '{text}' is not a time; use ISO 8601 such as 2026-11-21T09:30:00 or seconds since the epoch"
            ) from None
    if not math.isfinite(value):
        raise UsageError(f"{option} '{text}' is not a finite time; use ISO 8601 or seconds since the epoch")
    if not 0 <= value <= MAX_TIMESTAMP:
        hint = " (it looks like milliseconds: divide by 1000)" if MAX_TIMESTAMP < value <= MAX_TIMESTAMP * 1000 else ""
        raise UsageError(f"{option} '{text}' is outside 1970-2200{hint}; give seconds since the epoch or ISO 8601")
    return value


def finite_option(value: float, option: str, minimum: float = 0.0) -> float:
    """``value`` when finite and at least ``minimum``.

    Raises:
        UsageError: NaN, infinite or below ``minimum``, naming ``option``.
    """
    if not math.isfinite(value) or value < minimum:
        raise UsageError(f"{option} must be a finite number of at least {minimum:g}, got {value}")
    return value


def resolve_reid(spec: str, dirs, explicit: bool) -> Optional[Path]:
    """The re-id weights file, or None for the shipped default model (``models.default_model``)."""
    from common.settings import DEFAULT_REID
    from common.weights import resolve_weights

    resolved = resolve_weights(spec, dirs)
    if resolved.path is not None:
        return resolved.path
    if spec == DEFAULT_REID and not explicit:
        return None
    raise WeightsError(resolved.missing_message("re-id", "--reid"))


def cluster_after_ingest(db, console) -> None:
    """Re-cluster the global identities after an ingest added tracks, and print one line about them."""
    from pipelines.matching.service import cluster_after_ingest

    report = cluster_after_ingest(db)
    if report is None:
        return
    console.print(
        f"identities: {report.identities} from {report.tracks} tracks, {report.multi_camera} seen by "
        f"several cameras (threshold {report.threshold:.2f}; list them with 'reid-app identities')",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def command_settings() -> Settings:
    """The user's settings, read once per command: the first call in a command loads them
    (``common.settings.load_settings``) and keeps them on the command's click context; outside a command (a Ray
    worker) they are loaded afresh.

    Raises:
        UsageError: the settings file is not valid TOML.
    """
    context = click.get_current_context(silent=True)
    if context is None:
        return load_settings()
    meta = context.find_root().meta
    if "reid_app.settings" not in meta:
        meta["reid_app.settings"] = load_settings()
    return meta["reid_app.settings"]


def open_command_db(db_path: Optional[str]):
    """The investigation database a command names (``--db``, else the settings'), which must exist
    (``pipelines.matching.service.open_investigation``)."""
    from pipelines.matching.service import open_investigation

    return open_investigation(db_path or command_settings().db, create=False)
