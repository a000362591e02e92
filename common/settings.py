"""Application settings: defaults, an optional TOML settings file and environment variables.

Precedence (highest first): command-line options, environment variables, the settings file, built-in defaults.

Environment variables:
    ``REID_APP_DB``: default database path.
    ``REID_APP_WEIGHTS``: one or more folders (separated by ``os.pathsep``) searched for weight files.
    ``REID_APP_SETTINGS``: path of the settings file (default ``<user config dir>/settings.toml``).
    ``REID_APP_INDEX_DIR``: where search indexes are persisted (default ``<user cache dir>/index``).

Settings file keys (all optional): ``db``, ``weights_dir`` (string or list of strings), ``detector``, ``reid``,
``device``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import platformdirs

from common.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

APP_NAME = "reid-app"
#: The default person detector: the plain YOLOv8n detector finds 0.86-0.95 of the person-frames of PETS 2009 at 5
#: frames/s where the pose model used as a detector found 0.09 (``benchmarks/recall.py``); pose comes top-down.
DEFAULT_DETECTOR = "yolov8n"
#: The default pose model, run top-down on the detector's boxes (``--pose auto``).
DEFAULT_POSE = "yolov8n-pose"
DEFAULT_REID = "jointloss"
DEFAULT_DB_NAME = "reid.db"


def user_data_dir() -> Path:
    """Folder for the user's databases (platform convention, e.g. ``~/.local/share/reid-app``)."""
    return Path(platformdirs.user_data_dir(APP_NAME))


@dataclass(frozen=True)
class DatabaseLocation:
    """Where a database lives, told apart once: a URL (``sqlite:///...``, ``postgresql://...``), kept verbatim and
    never turned into a path, or a file path, with ``~`` expanded. ``str()`` gives it as the driver takes it (a URL
    may hold a password: show it through ``common.redaction.redact_url``)."""

    value: str

    @classmethod
    def of(cls, location: "str | Path | DatabaseLocation") -> "DatabaseLocation":
        """The location ``location`` names (a location given twice is the same object)."""
        if isinstance(location, DatabaseLocation):
            return location
        text = str(location)
        return cls(text if "://" in text else str(Path(text).expanduser()))

    @property
    def is_url(self) -> bool:
        """True for a URL (a server, or SQLite named by URL); False for a plain file path."""
        return "://" in self.value

    @property
    def file(self) -> Optional[Path]:
        """The file of a plain path (None for a URL)."""
        return None if self.is_url else Path(self.value)

    def beside(self, base: Path) -> "DatabaseLocation":
        """This location read from a file in folder ``base``: a relative path is taken from ``base``; a URL and an
        absolute path stay as they are."""
        return self if self.is_url else DatabaseLocation(str(Path(base) / self.value))

    def __str__(self) -> str:
        return self.value


def recordings_dir_for(db_location: "str | Path | DatabaseLocation") -> Path:
    """Where live cameras are recorded by default: ``recordings`` beside a database file, else (a database URL)
    in the user data folder."""
    location = DatabaseLocation.of(db_location)
    if location.file is None:
        return user_data_dir() / "recordings"
    return location.file.resolve().parent / "recordings"


def site_models_dir_for(db_location: "str | Path | DatabaseLocation", database_id: str) -> Path:
    """Where ``reid-app adapt`` keeps a database's adapted model versions and its work in progress:
    ``<database stem>-models`` beside a database file, else (a database URL) ``models/<database id>`` in the user
    data folder (the id, never the URL: a URL may hold a password)."""
    location = DatabaseLocation.of(db_location)
    if location.file is None:
        return user_data_dir() / "models" / database_id
    return location.file.resolve().parent / f"{location.file.stem}-models"


def compiled_model_cache_dir() -> Path:
    """Where OpenVINO keeps the models it compiled for this machine (``~/.cache/reid-app/openvino`` on Linux), so
    that later runs load them instead of compiling again (about 0.8 s per model and input size on 2 cores)."""
    return Path(platformdirs.user_cache_dir(APP_NAME)) / "openvino"


def vector_index_dir() -> Path:
    """Where search indexes are persisted (``$REID_APP_INDEX_DIR``, else e.g. ``~/.cache/reid-app/index``): one
    folder per database and model, a cache that is rebuilt from the database when deleted."""
    env = os.environ.get("REID_APP_INDEX_DIR")
    return Path(env).expanduser() if env else Path(platformdirs.user_cache_dir(APP_NAME)) / "index"


def user_cache_weights_dir() -> Path:
    """Folder searched last for weight files (e.g. ``~/.cache/reid-app/weights``)."""
    return Path(platformdirs.user_cache_dir(APP_NAME)) / "weights"


def settings_file_path() -> Path:
    """Path of the TOML settings file: ``$REID_APP_SETTINGS`` or ``<user config dir>/settings.toml``."""
    env = os.environ.get("REID_APP_SETTINGS")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_config_dir(APP_NAME)) / "settings.toml"


@dataclass
class Settings:
    """Resolved settings (before command-line overrides).

    Attributes:
        db: default database location: a file path or a URL (kept as a string; see :class:`DatabaseLocation`).
        weights_dirs: folders searched for weight files, in order (environment, settings file, user cache).
        detector: default detector weights name or path.
        reid: default re-id weights name or path.
        device: default device string (``auto``, ``cpu``, ``cuda``, ``cuda:N``).
        source: description of where non-default values came from, for messages.
    """

    db: str
    weights_dirs: list[Path] = field(default_factory=list)
    detector: str = DEFAULT_DETECTOR
    reid: str = DEFAULT_REID
    device: str = "auto"
    source: list[str] = field(default_factory=list)


def _read_settings_file(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"settings file {path} could not be read: {exc}") from exc
    return data


def load_settings() -> Settings:
    """Build :class:`Settings` from the settings file and environment variables.

    Raises:
        UsageError: the settings file exists but is not valid TOML.
    """
    path = settings_file_path()
    data = _read_settings_file(path)
    settings = Settings(db=str(user_data_dir() / DEFAULT_DB_NAME))
    env_weights = os.environ.get("REID_APP_WEIGHTS")
    if env_weights:
        settings.weights_dirs += [Path(p).expanduser() for p in env_weights.split(os.pathsep) if p]
        settings.source.append("REID_APP_WEIGHTS")
    file_weights = data.get("weights_dir")
    if file_weights:
        if isinstance(file_weights, str):
            file_weights = [file_weights]
        settings.weights_dirs += [Path(p).expanduser() for p in file_weights]
        settings.source.append(str(path))
    settings.weights_dirs.append(user_cache_weights_dir())
    for key in ("detector", "reid", "device"):
        if key in data:
            setattr(settings, key, str(data[key]))
    if "db" in data:
        settings.db = str(DatabaseLocation.of(str(data["db"])))
    if os.environ.get("REID_APP_DB"):
        settings.db = str(DatabaseLocation.of(os.environ["REID_APP_DB"]))
    return settings
