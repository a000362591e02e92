"""The site file of ``reid-app watch --site site.toml``: which live cameras to watch and how.

Example::

    [site]
    db = "site.db"                 # relative paths are relative to this file
    recordings = "recordings"      # default: 'recordings' beside the database
    fps = 5                        # analysed frames per second per camera
    segment = "60s"                # length of each recorded segment
    retention = "30d"              # footage older than this is purged (omit to keep everything)
    retention_every = "1h"         # how often the purge runs
    webhook = "https://alerts.example/reid"   # JSON POST per alert (omit for none)
    alert_repeat = "60s"           # no second alert for one person on one camera within this time
    threshold = 0.75               # watchlist match threshold (cosine; default: the re-id model's own)

    [[camera]]
    name = "entrance"
    url = "rtsp://user:pass@10.0.0.5/stream1"
    group = "lobby"                # cameras of one group see a common area (one person may be in both at once)
    transport = "tcp"              # or "udp" (rtsp:// only)
    fps = 5                        # overrides [site] fps

Durations are a number of seconds or a number with ``s``, ``m``, ``h`` or ``d``.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from common.errors import UsageError
from common.redaction import redact_url
from common.settings import DatabaseLocation
from pipelines.ingest.video import file_safe_name
from pipelines.live.stream import is_stream

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SITE_KEYS = {
    "db",
    "recordings",
    "fps",
    "segment",
    "retention",
    "retention_every",
    "webhook",
    "alert_repeat",
    "threshold",
}
_CAMERA_KEYS = {"name", "url", "group", "transport", "fps"}


def parse_duration(value: Any, what: str) -> float:
    """Seconds in ``value``: a number (seconds) or text such as ``90``, ``45s``, ``10m``, ``2h``, ``30d``.

    Raises:
        UsageError: not a positive duration (``what`` names the setting in the message).
    """
    if isinstance(value, bool):
        raise UsageError(f"{what} must be a duration such as 30s, 10m, 2h or 30d, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise UsageError(f"{what} must be a duration such as 30s, 10m, 2h or 30d, got {value!r}")
        seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
    if not 0 < seconds < float("inf"):
        raise UsageError(f"{what} must be more than 0 seconds, got {value!r}")
    return seconds


@dataclass
class SiteCamera:
    """One live camera: its name, URL (kept private; show :attr:`shown_url`), overlap group, RTSP transport and
    analysed frames per second."""

    name: str
    url: str
    group: str = ""
    transport: str = "tcp"
    fps: float = 5.0

    @property
    def shown_url(self) -> str:
        """The URL without credentials."""
        return redact_url(self.url)


@dataclass
class Site:
    """A parsed site file (module docstring). Durations in seconds; paths absolute or None (the default)."""

    path: Path
    cameras: list[SiteCamera]
    db: Optional[str] = None
    recordings: Optional[Path] = None
    segment_s: float = 60.0
    retention_s: Optional[float] = None
    retention_every_s: float = 3600.0
    webhook: Optional[str] = None
    alert_repeat_s: float = 60.0
    threshold: Optional[float] = None
    groups: dict[str, list[str]] = field(default_factory=dict)


def _number(value: Any, what: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= float(value) <= high:
        raise UsageError(f"{what} must be a number from {low:g} to {high:g}, got {value!r}")
    return float(value)


def _only_known(table: dict, known: set[str], what: str) -> None:
    unknown = set(table) - known
    if unknown:
        raise UsageError(f"{what} setting(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{what} must be a non-empty text, got {value!r}")
    return value.strip()


def load_site(path: str | Path) -> Site:
    """Read and check a site file.

    Raises:
        UsageError: the file is missing, not TOML, or a setting is missing, unknown or out of range; the message
            names the file and the setting (never a camera's credentials).
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"site file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"site file {path} cannot be read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"site file {path} is not valid TOML: {exc}") from None
    where = f"site file {path}"
    unknown = set(data) - {"site", "camera"}
    if unknown:
        raise UsageError(f"{where}: unknown section(s) {', '.join(sorted(unknown))} (expected [site] and [[camera]])")
    settings = data.get("site", {})
    if not isinstance(settings, dict):
        raise UsageError(f"{where}: [site] must be a table")
    _only_known(settings, _SITE_KEYS, f"{where}: unknown [site]")
    base = path.resolve().parent
    fps = _number(settings.get("fps", 5.0), f"{where}: [site] fps", 0.1, 60)
    site = Site(path=path, cameras=[])
    if "db" in settings:
        db = _text(settings["db"], f"{where}: [site] db")
        site.db = str(DatabaseLocation.of(db).beside(base))
    if "recordings" in settings:
        site.recordings = base / _text(settings["recordings"], f"{where}: [site] recordings")
    if "segment" in settings:
        site.segment_s = parse_duration(settings["segment"], f"{where}: [site] segment")
    if "retention" in settings:
        site.retention_s = parse_duration(settings["retention"], f"{where}: [site] retention")
    if "retention_every" in settings:
        site.retention_every_s = parse_duration(settings["retention_every"], f"{where}: [site] retention_every")
    if "webhook" in settings:
        hook = _text(settings["webhook"], f"{where}: [site] webhook")
        if not hook.lower().startswith(("http://", "https://")):
            raise UsageError(f"{where}: [site] webhook must be an http:// or https:// URL, got {redact_url(hook)}")
        site.webhook = hook
    if "alert_repeat" in settings:
        site.alert_repeat_s = parse_duration(settings["alert_repeat"], f"{where}: [site] alert_repeat")
    if "threshold" in settings:
        site.threshold = _number(settings["threshold"], f"{where}: [site] threshold", -1.0, 1.0)
    cameras = data.get("camera", [])
    if not isinstance(cameras, list) or not cameras:
        raise UsageError(f"{where} names no camera; add one [[camera]] table per camera with name and url")
    for number, entry in enumerate(cameras, 1):
        site.cameras.append(_camera(entry, f"{where}: camera {number}", fps))
    names = [c.name for c in site.cameras]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UsageError(f"{where}: camera name(s) {', '.join(duplicates)} used more than once")
    for camera in site.cameras:
        if camera.group:
            site.groups.setdefault(camera.group, []).append(camera.name)
    return site


def _camera(entry: Any, where: str, default_fps: float) -> SiteCamera:
    if not isinstance(entry, dict):
        raise UsageError(f"{where} must be a table")
    _only_known(entry, _CAMERA_KEYS, f"{where}: unknown")
    if "url" not in entry or "name" not in entry:
        raise UsageError(f"{where} needs both name and url")
    name = _text(entry["name"], f"{where} name")
    if file_safe_name(name) != name:
        raise UsageError(
            f"{where}: name {name!r} must be usable as a folder name (letters, digits, - _ .); "
            f"for example {file_safe_name(name)!r}"
        )
    url = _text(entry["url"], f"{where} ({name}) url")
    if not is_stream(url):
        raise UsageError(
            f"{where} ({name}): url {redact_url(url)} is not a live stream (rtsp://, rtsps://, "
            f"http(s)://, udp://, rtmp://, srt:// or /dev/videoN)"
        )
    transport = entry.get("transport", "tcp")
    if transport not in ("tcp", "udp"):
        raise UsageError(f"{where} ({name}): transport must be tcp or udp, got {transport!r}")
    group = entry.get("group", "")
    if not isinstance(group, str):
        raise UsageError(f"{where} ({name}): group must be a text, got {group!r}")
    fps = _number(entry.get("fps", default_fps), f"{where} ({name}) fps", 0.1, 60)
    return SiteCamera(name, url, group.strip(), transport, fps)
