"""User-facing errors.

Every mistake a user can make (a bad path, a bad option value, missing weights) raises a subclass of
:class:`ReidAppError` whose message names the input and what is wrong. The CLI prints that message as a single line
on stderr and exits non-zero, without a traceback; the desktop app shows it in a dialog or the status bar.

A message names the user's settings through :func:`setting` (``setting("fps")``), never as a CLI option: each
front end words them its own way. ``str(error)`` words them as the CLI's options (``--fps``); the app calls
:meth:`ReidAppError.worded` with its own names ("the Frames per second field"). :attr:`ReidAppError.settings`
says which settings a message is about.
"""

from __future__ import annotations

import re
from typing import Callable

#: Marks a setting's name inside a message (a control character that no option value or path holds).
_MARK = "\x1f"
_SETTING = re.compile(f"{_MARK}([a-z_]+){_MARK}")


def setting(name: str) -> str:
    """The placeholder for the user setting ``name`` (``fps``, ``detector``, ``db``, ``out``... the CLI option's
    name with ``_`` for ``-``) inside an error message."""
    return f"{_MARK}{name}{_MARK}"


def cli_option(name: str) -> str:
    """A setting as the CLI's option: ``detector_size`` -> ``--detector-size``."""
    return "--" + name.replace("_", "-")


def word_settings(text: str, name_of: Callable[[str], str] = cli_option) -> str:
    """``text`` (an error message or a summary note) with each :func:`setting` placeholder worded by ``name_of``
    (default: as the CLI's options)."""
    return _SETTING.sub(lambda m: name_of(m.group(1)), str(text))


class ReidAppError(Exception):
    """Base class for errors caused by user input or the environment, reported without a traceback.

    Args:
        message: what is wrong and what to do, naming settings with :func:`setting`.
    """

    @property
    def settings(self) -> list[str]:
        """The settings the message names, in order (``["fps"]``)."""
        return _SETTING.findall(str(self.args[0])) if self.args else []

    def worded(self, name_of: Callable[[str], str]) -> str:
        """The message with each setting worded by ``name_of`` (a setting's name -> the words for it)."""
        return word_settings(str(self.args[0]) if len(self.args) == 1 else super().__str__(), name_of)

    def __str__(self) -> str:
        return self.worded(cli_option)


class InputVideoError(ReidAppError):
    """A video file is missing, unreadable, empty or not a video."""


class DatabaseError(ReidAppError):
    """The database path is unusable, or the file belongs to another program or a newer schema."""


class WeightsError(ReidAppError):
    """Model weights could not be found, fetched or loaded."""


class DeviceError(ReidAppError):
    """The requested compute device does not exist on this machine."""


class UsageError(ReidAppError):
    """An option has an invalid value."""


class DatasetError(ReidAppError):
    """A re-id dataset root is missing or not in the expected layout."""
