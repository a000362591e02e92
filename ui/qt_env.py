"""Process environment for Qt: undo what other libraries set, and refuse to start without a display.

opencv-python points ``QT_QPA_PLATFORM_PLUGIN_PATH`` (and ``QT_QPA_FONTDIR``) at its own Qt build's plugins when
``cv2`` is imported; PySide6 must load its own platform plugin (xcb, wayland...), so those values are removed
before the ``QApplication`` is made (``../shared/DESIGN.md``).
"""

from __future__ import annotations

import os
import socket
import sys
from typing import MutableMapping, Optional

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


def _x11_reachable(display: str, timeout_s: float = 2.0) -> bool:
    """Whether an X server accepts connections at ``display`` (``[host]:N[.screen]``): its Unix socket (also the
    abstract one Linux servers listen on) for a local display, TCP port 6000+N for a remote one."""
    host, _, rest = display.rpartition(":")
    number = rest.split(".")[0]
    if not number.isdigit():
        return False
    if host in ("", "unix"):
        for address in (f"/tmp/.X11-unix/X{number}", f"\0/tmp/.X11-unix/X{number}"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout_s)
                try:
                    sock.connect(address)
                    return True
                except OSError:
                    continue
        return False
    try:
        socket.create_connection((host.strip("[]"), 6000 + int(number)), timeout=timeout_s).close()
        return True
    except OSError:
        return False


def _wayland_reachable(environ: MutableMapping[str, str]) -> bool:
    name = environ.get("WAYLAND_DISPLAY", "")
    path = name if name.startswith("/") else os.path.join(environ.get("XDG_RUNTIME_DIR", ""), name)
    return bool(name) and os.path.exists(path)


def display_problem(environ: MutableMapping[str, str] = os.environ, platform: str = sys.platform) -> Optional[str]:
    """Why Qt could not open a window here (it would abort the process), or None when it can: on Linux, with
    ``QT_QPA_PLATFORM`` unset, ``xcb`` or ``wayland``, neither an X server at ``DISPLAY`` nor a Wayland socket
    answers (other platforms such as ``offscreen`` need no display)."""
    chosen = environ.get("QT_QPA_PLATFORM", "").split(":")[0]
    if not platform.startswith("linux") or chosen not in ("", "xcb", "wayland", "wayland-egl"):
        return None
    display = environ.get("DISPLAY", "") if chosen in ("", "xcb") else ""
    if not display and not environ.get("WAYLAND_DISPLAY"):
        return "no display found for the desktop app (DISPLAY is not set)"
    if (chosen != "xcb" and _wayland_reachable(environ)) or (display and _x11_reachable(display)):
        return None
    if display:
        return f"cannot connect to the display DISPLAY={display} (no X server answers there)"
    return f"cannot connect to the Wayland display {environ.get('WAYLAND_DISPLAY')} (no such socket)"


def check_display(environ: MutableMapping[str, str] = os.environ, platform: str = sys.platform) -> None:
    """Raises:
        UsageError: see :func:`display_problem`; the message says what to do instead.
    """
    problem = display_problem(environ, platform)
    if problem:
        raise UsageError(f"{problem}: run it in a desktop session, over 'ssh -X', or use the command line "
                         f"('reid-app --help')")
