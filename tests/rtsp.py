"""A real RTSP server (GStreamer's, under the system Python) publishing the lab clips in a loop on loopback; its
fixtures are registered for every test folder by ``tests/conftest.py``."""

from __future__ import annotations

import functools
import select
import subprocess
from pathlib import Path

import pytest

from tests.conftest import LAB, ROOT, _require, free_port

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER = ROOT / "tests" / "live" / "rtsp_server.py"
_PACKAGES = (
    "gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good "
    "gstreamer1.0-plugins-bad python3-gst-1.0"
)


@functools.lru_cache(maxsize=1)
def _server_available() -> str | None:
    """None when the RTSP server can run here, else why not."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} is absent"
    check = subprocess.run(
        [
            SYSTEM_PYTHON,
            "-c",
            "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer",
        ],
        capture_output=True,
        text=True,
    )
    if check.returncode != 0:
        return f"GStreamer's RTSP server is not installed (Debian: apt-get install {_PACKAGES}; .ci/run does)"
    return None


class RtspServer:
    """One server process; :meth:`start` (again after :meth:`kill`) serves ``rtsp://127.0.0.1:PORT/camN``."""

    def __init__(self, port: int, cameras: dict[str, Path], user: str | None = None, password: str | None = None):
        self.port, self.cameras, self.user, self.password = port, cameras, user, password
        self.process: subprocess.Popen | None = None

    def url(self, camera: str, credentials: str = "") -> str:
        return f"rtsp://{credentials}127.0.0.1:{self.port}/{camera}"

    def start(self) -> "RtspServer":
        args = [SYSTEM_PYTHON, str(SERVER), str(self.port), *(f"{k}={v}" for k, v in self.cameras.items())]
        if self.user:
            args += ["--user", self.user, "--password", self.password or ""]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.process.stdout], [], [], 30)
        line = self.process.stdout.readline() if ready else "(nothing in 30 s)"  # "ready" once it listens
        if line.strip() != "ready":
            self.kill()
            raise RuntimeError(f"the RTSP server did not start: {line} {self.process.stderr.read()}")
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def rtsp_server():
    """Make servers of the lab clips (``cameras=("cam0", "cam1")``); every one is killed after the test."""
    why = _server_available()
    if why:
        pytest.skip(why)
    made: list[RtspServer] = []

    def make(cameras=("cam0",), files: dict | None = None, **auth) -> RtspServer:
        served = {c: _require(LAB / f"{c}.mp4") for c in cameras}
        served.update(files or {})
        server = RtspServer(free_port(), served, **auth).start()
        made.append(server)
        return server

    yield make
    for server in made:
        server.kill()


def make_short_gop_clip(camera: str, frames: int, out: Path) -> Path:
    """The first ``frames`` frames of a lab camera re-encoded (libx264, yuv420p, 10 frames/s) with a keyframe every
    second, as cameras send; the lab files themselves have a keyframe every 13 s."""
    import av

    source = av.open(str(_require(LAB / f"{camera}.mp4")))
    stream = source.streams.video[0]
    target = av.open(str(out), "w")
    video = target.add_stream("libx264", rate=10)
    video.width, video.height, video.pix_fmt = stream.width, stream.height, "yuv420p"
    video.options = {"g": "10", "bf": "0", "preset": "ultrafast"}
    for n, frame in enumerate(source.decode(stream)):
        if n == frames:
            break
        for packet in video.encode(av.VideoFrame.from_ndarray(frame.to_ndarray(format="bgr24"), format="bgr24")):
            target.mux(packet)
    for packet in video.encode():
        target.mux(packet)
    target.close()
    source.close()
    return out


@pytest.fixture(scope="session")
def short_gop_clip(tmp_path_factory) -> Path:
    """The first 10 s of lab cam0 with a keyframe every second (:func:`make_short_gop_clip`)."""
    return make_short_gop_clip("cam0", 100, tmp_path_factory.mktemp("gop") / "cam0-gop10.mp4")


@pytest.fixture(scope="session")
def cam1_live_clip(tmp_path_factory) -> Path:
    """The first 24 s of lab cam1 with a keyframe every second (:func:`make_short_gop_clip`)."""
    return make_short_gop_clip("cam1", 240, tmp_path_factory.mktemp("gop") / "cam1-gop10.mp4")
