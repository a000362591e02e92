"""Times as people read them in tables, players and messages (no CLI or Qt dependency, so every layer can use
it)."""

from __future__ import annotations

import math
from datetime import datetime


def format_time(timestamp: float) -> str:
    """Wall-clock time for tables; times before 1990 are video-relative (unknown start) and shown as h:mm:ss.s.
    A value no calendar date can show (stored by an older reid-app) is printed as seconds, never raised."""
    if not math.isfinite(timestamp):
        return str(timestamp)
    if timestamp < 631152000:
        minutes, seconds = divmod(timestamp, 60)
        return f"{int(minutes // 60)}:{int(minutes % 60):02d}:{seconds:04.1f}"
    try:
        return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S.%f")[:-5]
    except (ValueError, OverflowError, OSError):
        return f"{timestamp:.1f} s since 1970"
