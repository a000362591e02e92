"""Bounded recording of several live cameras at once (``reid-app ingest URL --duration S``): each camera is
recorded in its own thread into rolling MP4 segments (``pipelines.live.recording``), and the segments are then ingested
like files, each with the wall-clock time of its first frame. A camera that cannot be reached fails alone.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from common.errors import ReidAppError
from common.redaction import name_from_url
from pipelines.ingest.video import file_safe_name
from pipelines.live.recording import Segment, SegmentRecorder
from pipelines.live.stream import StreamOptions, StreamSource


def stream_camera_name(url: str) -> str:
    """A camera name for a stream URL, file-safe and never holding a credential (``common.redaction.name_from_url``:
    ``rtsp://h/Streaming/101`` -> ``101``, ``/dev/video0`` -> ``video0``, else the host)."""
    return file_safe_name(name_from_url(url))


@dataclass
class CameraRecording:
    """The outcome of recording one camera: its finished segments, or why none."""

    camera: str
    name: str  # the redacted URL
    segments: list[Segment] = field(default_factory=list)
    error: Optional[str] = None
    reconnects: int = 0


def record_cameras(
    cameras: list[tuple[str, str]],
    duration_s: float,
    folder: Path,
    options: StreamOptions = StreamOptions(give_up_after_s=30.0),
    segment_s: float = 300.0,
    should_stop: Callable[[], bool] = lambda: False,
    on_progress: Optional[Callable[[str, float], None]] = None,
) -> list[CameraRecording]:
    """Record ``duration_s`` seconds of every ``(camera name, url)`` at once, into ``folder / camera``.

    Args:
        duration_s: seconds of wall-clock time per camera, from its first recorded frame.
        options: how streams are opened and reopened (a camera that delivers nothing for
            ``options.give_up_after_s`` seconds fails).
        segment_s: the longest segment, in seconds.
        on_progress: called with ``(camera, seconds recorded)`` about twice a second per camera.

    Returns:
        One :class:`CameraRecording` per camera, in order.

    Raises:
        KeyboardInterrupt: re-raised once every camera stopped and closed its segment (each file stays playable).
    """
    results = [CameraRecording(camera, "") for camera, _ in cameras]
    interrupted = threading.Event()

    def stopped() -> bool:
        return interrupted.is_set() or should_stop()

    finished = [threading.Event() for _ in cameras]

    def record(index: int, camera: str, url: str) -> None:
        try:
            recorder = SegmentRecorder(Path(folder) / file_safe_name(camera), camera, segment_s)
            source = StreamSource(url, analysis_fps=1.0, options=options, recorder=recorder)
            results[index].name = source.name
            try:
                results[index].segments = source.record(
                    duration_s, stopped, None if on_progress is None else lambda s: on_progress(camera, s)
                )
            except ReidAppError as exc:
                results[index].error = str(exc)
            results[index].reconnects = source.reconnects
            if source.stopped_because and results[index].error is None:  # what was recorded before is kept
                results[index].error = source.stopped_because
        finally:
            finished[index].set()

    threads = [
        threading.Thread(target=record, args=(i, camera, url), name=f"record-{camera}", daemon=True)
        for i, (camera, url) in enumerate(cameras)
    ]
    for thread in threads:
        thread.start()
    # waiting on events, not Thread.join: after Ctrl-C had interrupted a join, joining again returned before the
    # recorders had closed their files (measured: unplayable recordings)
    try:
        for event in finished:
            while not event.wait(0.2):
                pass
    except KeyboardInterrupt:
        interrupted.set()
        for event in finished:
            event.wait(options.read_timeout_s + options.open_timeout_s + 5.0)
        raise
    return results
