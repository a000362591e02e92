"""A real RTSP server on loopback for the live-camera tests: GStreamer's RTSP server library (Debian packages
``gir1.2-gst-rtsp-server-1.0``, ``gstreamer1.0-plugins-{base,good,bad}``, ``python3-gst-1.0``) publishing video files
in an endless loop, in real time, one mount point per file.

Runs under the *system* Python (``/usr/bin/python3``, where Debian's PyGObject lives), not the project's venv::

    /usr/bin/python3 tests/live/rtsp_server.py PORT cam0=/path/cam0.mp4 cam1=/path/cam1.mp4 [--user U --password P]

prints ``ready`` once it listens, and serves ``rtsp://127.0.0.1:PORT/cam0`` ... until killed. Each file's H.264
access units are read once (``qtdemux ! h264parse``) and pushed through ``appsrc`` at the file's frame rate, the
timestamps running on across loops, so a client sees one unending live camera.
"""

from __future__ import annotations

import sys
import threading
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def read_access_units(path: str) -> tuple[list[bytes], float]:
    """The file's H.264 access units (Annex B, SPS/PPS before every keyframe) and its frame rate (frames/s)."""
    pipeline = Gst.parse_launch(
        f'filesrc location="{path}" ! qtdemux ! h264parse config-interval=-1 ! '
        "video/x-h264,stream-format=byte-stream,alignment=au ! appsink name=sink sync=false emit-signals=false"
    )
    sink = pipeline.get_by_name("sink")
    pipeline.set_state(Gst.State.PLAYING)
    units, fps = [], 25.0
    while True:
        sample = sink.emit("pull-sample")
        if sample is None:
            break
        if not units:
            structure = sample.get_caps().get_structure(0)
            ok, num, den = structure.get_fraction("framerate")
            if ok and num > 0 and den > 0:
                fps = num / den
        buffer = sample.get_buffer()
        units.append(buffer.extract_dup(0, buffer.get_size()))
    pipeline.set_state(Gst.State.NULL)
    if not units:
        raise SystemExit(f"rtsp_server: no H.264 video in {path}")
    return units, fps


class LoopingFactory(GstRtspServer.RTSPMediaFactory):
    """One shared live media per mount: a thread pushes the access units at ``fps`` while the media exists."""

    def __init__(self, units: list[bytes], fps: float):
        super().__init__()
        self.units, self.fps = units, fps
        self.set_shared(True)
        self.set_launch(
            "( appsrc name=src is-live=true format=time do-timestamp=true "
            "caps=video/x-h264,stream-format=byte-stream,alignment=au "
            "! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )"
        )
        self.connect("media-configure", self._configure)

    def _configure(self, _factory, media):
        source = media.get_element().get_by_name_recurse_up("src")
        stop = threading.Event()
        media.connect("unprepared", lambda *_: stop.set())
        threading.Thread(target=self._push, args=(source, stop), daemon=True).start()

    def _push(self, source, stop: threading.Event) -> None:
        period = 1.0 / self.fps
        start = time.monotonic()
        n = 0
        while not stop.is_set():
            delay = start + n * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            buffer = Gst.Buffer.new_wrapped(self.units[n % len(self.units)])
            buffer.duration = int(period * Gst.SECOND)
            if source.emit("push-buffer", buffer) != Gst.FlowReturn.OK and n > 0:
                return
            n += 1


def main(argv: list[str]) -> None:
    Gst.init(None)
    port, mounts, user, password = argv[0], {}, None, None
    rest = argv[1:]
    while rest:
        arg = rest.pop(0)
        if arg == "--user":
            user = rest.pop(0)
        elif arg == "--password":
            password = rest.pop(0)
        else:
            name, _, path = arg.rpartition("=")  # a mount may hold "=" itself (DVR paths), a file path not
            mounts[name] = path
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    if user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password or ""), token)
        server.set_auth(auth)
    for name, path in mounts.items():
        factory = LoopingFactory(*read_access_units(path))
        if user:
            permissions = GstRtspServer.RTSPPermissions()
            permissions.add_role_from_structure(Gst.Structure.new_empty("user"))
            permissions.add_permission_for_role("user", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
            permissions.add_permission_for_role("user", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True)
            factory.set_permissions(permissions)
        server.get_mount_points().add_factory(f"/{name}", factory)
    if server.attach(None) == 0:
        raise SystemExit(f"rtsp_server: cannot listen on 127.0.0.1:{port}")
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main(sys.argv[1:])
