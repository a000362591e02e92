"""User-facing errors.

Every mistake a user can make (a bad path, a bad option value, missing weights) raises a subclass of
:class:`ReidAppError` whose message names the input and what is wrong. The CLI prints that message as a single line
on stderr and exits non-zero, without a traceback.
"""


class ReidAppError(Exception):
    """Base class for errors caused by user input or the environment, reported without a traceback."""


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
