"""Process environment for Qt: undo what other libraries set, and refuse to start without a display.

opencv-python points ``QT_QPA_PLATFORM_PLUGIN_PATH`` (and ``QT_QPA_FONTDIR``) at its own Qt build's plugins when
``cv2`` is imported; PySide6 must load its own platform plugin (xcb, wayland...), so those values are removed
before the ``QApplication`` is made (``../shared/DESIGN.md``).
"""

from __future__ import annotations

import ctypes.util
import os
import socket
import sys
from typing import Callable, MutableMapping, Optional

from common.errors import UsageError

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


#: The libraries Qt's xcb platform plugin loads (Qt 6.5+) that a minimal Debian/Ubuntu lacks, with their packages.
XCB_LIBRARIES = {
    "xcb-cursor": "libxcb-cursor0",
    "xcb-icccm": "libxcb-icccm4",
    "xcb-image": "libxcb-image0",
    "xcb-keysyms": "libxcb-keysyms1",
    "xcb-randr": "libxcb-randr0",
    "xcb-render-util": "libxcb-render-util0",
    "xcb-shape": "libxcb-shape0",
    "xcb-xkb": "libxcb-xkb1",
    "xkbcommon-x11": "libxkbcommon-x11-0",
}


def xcb_library_problem(
    environ: MutableMapping[str, str] = os.environ,
    platform: str = sys.platform,
    find: Callable[[str], Optional[str]] = ctypes.util.find_library,
) -> Optional[str]:
    """Why Qt's xcb platform plugin would fail to load here (Qt then aborts with "Could not load the Qt platform
    plugin xcb"), naming the missing libraries and their Debian/Ubuntu packages; None when the app will not use
    xcb (another ``QT_QPA_PLATFORM``, a Wayland session, not Linux) or every library is found."""
    chosen = environ.get("QT_QPA_PLATFORM", "").split(":")[0]
    if not platform.startswith("linux") or chosen not in ("", "xcb") or not environ.get("DISPLAY"):
        return None
    if chosen == "" and environ.get("WAYLAND_DISPLAY") and _wayland_reachable(environ):
        return None
    missing = [package for library, package in XCB_LIBRARIES.items() if find(library) is None]
    if not missing:
        return None
    return (
        f"the desktop app needs the X11 (xcb) libraries of Qt, and {', '.join(missing)} "
        f"{'is' if len(missing) == 1 else 'are'} not installed: 'sudo apt-get install {' '.join(missing)}' "
        f"(Debian/Ubuntu)"
    )


def check_display(
    environ: MutableMapping[str, str] = os.environ,
    platform: str = sys.platform,
    find: Callable[[str], Optional[str]] = ctypes.util.find_library,
) -> None:
    """``find``: how a shared library is looked up (``ctypes.util.find_library``).

    Raises:
        UsageError: see :func:`display_problem` and :func:`xcb_library_problem`; the message says what to do
            instead.
    """
    problem = display_problem(environ, platform)
    if problem:
        raise UsageError(
            f"{problem}: run it in a desktop session, over 'ssh -X', or use the command line ('reid-app --help')"
        )
    missing = xcb_library_problem(environ, platform, find)
    if missing:
        raise UsageError(missing)
