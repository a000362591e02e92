"""Times as people read them in tables, players and messages (no CLI or Qt dependency, so every layer can use
it)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Iterable

#: Times before this (1990-01-01, seconds since the epoch) are seconds from a video's start: its clock is unknown.
KNOWN_TIME_FROM = 631152000.0


def format_time(timestamp: float) -> str:
    """Wall-clock time for tables; times before 1990 are video-relative (unknown start) and shown as h:mm:ss.s.
    A value no calendar date can show (stored by an older reid-app) is printed as seconds, never raised."""
    if not math.isfinite(timestamp):
        return str(timestamp)
    if timestamp < KNOWN_TIME_FROM:
        minutes, seconds = divmod(timestamp, 60)
        return f"{int(minutes // 60)}:{int(minutes % 60):02d}:{seconds:04.1f}"
    try:
        return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S.%f")[:-5]
    except (ValueError, OverflowError, OSError):
        return f"{timestamp:.1f} s since 1970"


def zone_label(timestamps: Iterable[float] = ()) -> str:
    """How tables label their times: this machine's time zone (``UTC+01:00``; format_time prints local times), or
    ``time unknown`` (the times are then h:mm:ss into the video) when every one of ``timestamps`` (seconds) is from
    footage without a start time, which no time zone applies to."""
    shown = list(timestamps)
    if shown and all(t < KNOWN_TIME_FROM for t in shown):
        return "time unknown"
    offset = datetime.now().astimezone().strftime("%z")
    return f"UTC{offset[:3]}:{offset[3:]}"


def confidence_text(confidence: float, tracks: int) -> str:
    """An identity's confidence for display: two decimals, or "-" for a single track (alike with nothing else:
    the stored 1.0 says nothing)."""
    return "-" if tracks < 2 else f"{confidence:.2f}"
