"""Starting the app: the Qt environment opencv leaves behind, no display, and a real start under Xvfb (xcb)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from common.errors import UsageError
from tests.conftest import ROOT, copy_db, run_cli
from ui.qt_env import check_display, clean_qt_environment


def test_opencv_qt_paths_are_removed_and_others_kept():
    import cv2  # noqa: F401  (sets QT_QPA_PLATFORM_PLUGIN_PATH to its own plugins)

    environ = {
        "QT_QPA_PLATFORM_PLUGIN_PATH": os.environ.get("QT_QPA_PLATFORM_PLUGIN_PATH", ""),
        "QT_QPA_FONTDIR": "/venv/lib/python3.11/site-packages/cv2/qt/fonts",
        "QT_PLUGIN_PATH": "/opt/my-qt/plugins",
        "QT_QPA_PLATFORM": "xcb",
    }
    assert "cv2" in environ["QT_QPA_PLATFORM_PLUGIN_PATH"], "opencv no longer sets its Qt plugin path"
    removed = clean_qt_environment(environ)
    assert sorted(removed) == ["QT_QPA_FONTDIR", "QT_QPA_PLATFORM_PLUGIN_PATH"]
    assert environ == {"QT_PLUGIN_PATH": "/opt/my-qt/plugins", "QT_QPA_PLATFORM": "xcb"}


def test_no_display_is_a_clear_error():
    with pytest.raises(UsageError, match="no display"):
        check_display({}, "linux")
    with socket.socket() as listener:  # an X server's TCP port: display 127.0.0.1:N listens on 6000 + N
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        if port > 6000:
            display = {"DISPLAY": f"127.0.0.1:{port - 6000}"}
            check_display(display, "linux", find=lambda name: f"lib{name}.so")
            # the X server answers, but Qt's xcb plugin would not load: the missing packages are named
            absent = {"xcb-cursor", "xcb-keysyms"}
            with pytest.raises(
                UsageError,
                match=r"libxcb-cursor0, libxcb-keysyms1 are not installed: "
                r"'sudo apt-get install libxcb-cursor0 libxcb-keysyms1'",
            ):
                check_display(display, "linux", find=lambda name: None if name in absent else f"lib{name}.so")
            check_display({**display, "QT_QPA_PLATFORM": "offscreen"}, "linux", find=lambda name: None)
    with pytest.raises(UsageError, match="cannot connect to the display DISPLAY=:987"):
        check_display({"DISPLAY": ":987"}, "linux")
    check_display({"QT_QPA_PLATFORM": "offscreen"}, "linux")
    check_display({}, "win32")


@pytest.mark.slow
@pytest.mark.parametrize("args", [["gui", "--db", "{db}"], []], ids=["gui", "no-command"])
def test_gui_without_a_display_says_so_in_one_line(tmp_path, args):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["REID_APP_DB"] = str(tmp_path / "x.db")
    args = [a.format(db=tmp_path / "x.db") for a in args]
    proc = subprocess.run(
        [sys.executable, "-m", "reid_app.cli", *args], capture_output=True, text=True, env=env, timeout=120, cwd=ROOT
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "reid-app: error: no display found for the desktop app (DISPLAY is not set): run it in a desktop session, "
        "over 'ssh -X', or use the command line ('reid-app --help')"
    ]
    assert not (tmp_path / "x.db").exists()


def test_gui_help_explains_it():
    result = run_cli("gui", "--help")
    assert result.code == 0
    assert "Open the desktop app" in result.stdout and "--db PATH" in result.stdout


@pytest.fixture
def xvfb_display():
    """A virtual X display (``:N``) from Xvfb, for the xcb platform plugin."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb is not installed (Debian package xvfb; .ci/run installs it when it can)")
    read, write = os.pipe()
    proc = subprocess.Popen(
        [xvfb, "-displayfd", str(write), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as fh:
        number = fh.readline().strip()
    if not number:
        proc.kill()
        pytest.skip("Xvfb did not start")
    yield f":{number}"
    proc.terminate()
    proc.wait(10)


@pytest.mark.slow
def test_app_starts_under_xvfb_with_xcb_after_opencv(xvfb_display, lab_db, tmp_path):
    db = copy_db(lab_db, tmp_path)
    env = dict(
        os.environ,
        DISPLAY=xvfb_display,
        QT_QPA_PLATFORM="xcb",
        YOLO_VERBOSE="False",
        XDG_CONFIG_HOME=str(tmp_path / "config"),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "reid_app.cli", "-v", "gui", "--db", str(db)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "main window shown" in line:
                break
        time.sleep(2)  # the event loop runs: the window, player and database load
        assert proc.poll() is None, "".join(lines) + proc.stdout.read()
    finally:
        proc.terminate()
        proc.wait(30)
    output = "".join(lines)
    assert "main window shown on the xcb platform" in output, output
    assert "ignoring QT_QPA_PLATFORM_PLUGIN_PATH" in output, output
