"""Process environment for Qt: undo what other libraries set, and refuse to start without a display.

opencv-python points ``QT_QPA_PLATFORM_PLUGIN_PATH`` (and ``QT_QPA_FONTDIR``) at its own Qt build's plugins when
``cv2`` is imported; PySide6 must load its own platform plugin (xcb, wayland...), so those values are removed
before the ``QApplication`` is made (``../shared/DESIGN.md``).
"""

from __future__ import annotations

import os
import sys
from typing import MutableMapping

from reid_app.errors import UsageError

_FOREIGN_QT_VARIABLES = ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR", "QT_PLUGIN_PATH")


def _is_foreign(value: str) -> bool:
    parts = value.replace("\\", "/").split("/")
    return "cv2" in parts


def clean_qt_environment(environ: MutableMapping[str, str] = os.environ) -> list[str]:
    """Remove Qt path variables that point into another package's Qt (opencv's ``cv2/qt``).

    Returns:
        The names of the variables removed.
    """
    removed = [name for name in _FOREIGN_QT_VARIABLES if name in environ and _is_foreign(environ[name])]
    for name in removed:
        del environ[name]
    return removed


def check_display(environ: MutableMapping[str, str] = os.environ, platform: str = sys.platform) -> None:
    """Raises:
        UsageError: on Linux with no ``DISPLAY``/``WAYLAND_DISPLAY`` and no ``QT_QPA_PLATFORM`` chosen, where Qt
            would abort the process.
    """
    if not platform.startswith("linux") or environ.get("QT_QPA_PLATFORM"):
        return
    if not (environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")):
        raise UsageError("no display found for the desktop app (DISPLAY is not set): run it in a desktop session, "
                         "over 'ssh -X', or use the command line ('reid-app --help')")
