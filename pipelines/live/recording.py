"""Recording a live camera as rolling MP4 segments: the stream's packets written unchanged (remuxed by PyAV, never
re-encoded), a new segment at the first keyframe after ``segment_s`` seconds and after every reconnection, so
each segment plays on its own in any player and in reid-app's like an ingested file.
"""

from __future__ import annotations

import errno
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

import av

from common.errors import ReidAppError
from pipelines.ingest.video import file_safe_name
from storage.database import nearly_full

log = logging.getLogger(__name__)


#: Muxer options of the recorded segments.
FRAGMENTED_MP4 = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}


class RecordingStopped(ReidAppError):
    """A camera's recording cannot go on (its folder's disk is full); the message says which and where."""


def _disk_full(exc: BaseException, folder: Path) -> bool:
    return getattr(exc, "errno", None) == errno.ENOSPC or "no space" in str(exc).lower() or nearly_full(folder)


@dataclass
class Segment:
    """One recorded file.

    Attributes:
        path: the ``.mp4``.
        start_time: wall-clock arrival of its first packet (a keyframe), seconds since the epoch.
        base_pts: the decode timestamp of that keyframe (stream time base): a decoded frame of the live stream
            with timestamp ``pts`` is at ``(pts - base_pts) * time_base`` seconds into this file.
        first_pts: the keyframe's presentation timestamp: frames of this connection from it on (until the next
            segment's) are in this file.
        time_base: the stream's time base (seconds per tick).
        connection: which connection of the stream it was recorded from (timestamps restart with each).
        packets: packets (frames) written so far.
        duration_s: seconds of video in it (last packet's time - first's), updated as it grows.
        width, height: its picture size in pixels, from the first frame decoded of it (0 until then); a stream
            that changes size starts a new segment, so a segment has one size.
    """

    path: Path
    start_time: float
    base_pts: int
    first_pts: int
    time_base: float
    connection: int = 0
    packets: int = 0
    duration_s: float = 0.0
    width: int = 0
    height: int = 0

    def seconds_into(self, pts: Optional[int]) -> Optional[float]:
        """Seconds into this file of the live stream's frame with timestamp ``pts`` (None when unknown)."""
        return None if pts is None else (pts - self.base_pts) * self.time_base


class SegmentRecorder:
    """Writes one camera's stream packets into MP4 segments under ``folder``.

    Args:
        folder: where the segments go (created); files are named ``CAMERA-YYYYmmddTHHMMSS.ffffffZ.mp4`` (UTC).
        camera: camera name (used in file names, made file-safe).
        segment_s: a segment is closed at the first keyframe at least this many seconds after its start.
        on_segment: called with each finished :class:`Segment` (closed and playable).

    Not thread-safe: one recorder per stream reader thread.
    """

    def __init__(
        self, folder: Path, camera: str, segment_s: float = 60.0, on_segment: Optional[Callable[[Segment], None]] = None
    ):
        if not segment_s > 0:
            raise ValueError(f"segment length must be > 0 seconds, got {segment_s}")
        self.folder = Path(folder)
        self.camera = file_safe_name(camera)
        self.segment_s = float(segment_s)
        self.on_segment = on_segment
        #: Every segment begun, the open one last.
        self.segments: list[Segment] = []
        self._container = None
        self._stream = None
        self._source = None
        self._connection = 0

    @property
    def current(self) -> Optional[Segment]:
        """The segment being written, or None (before the first keyframe, or after a reconnection)."""
        return self.segments[-1] if self._container is not None else None

    def new_connection(self, source_stream) -> None:
        """The stream was (re)opened: the open segment ends (timestamps restart) and the next begins at the next
        keyframe of ``source_stream`` (a PyAV video stream)."""
        self.close()
        self._source = source_stream
        self._connection += 1

    def segment_of(self, pts: Optional[int]) -> Optional[Segment]:
        """The segment of this connection that holds the decoded frame with presentation timestamp ``pts``."""
        if pts is None:
            return None
        for segment in reversed(self.segments):
            if segment.connection != self._connection:
                return None
            if segment.first_pts <= pts:
                return segment
        return None

    def write(self, packet, arrival: float) -> Optional[Segment]:
        """Record one demuxed packet of the current connection (call after decoding it: its timestamps are
        rebased here). Returns the segment it went into, or None when it was dropped (before the first
        keyframe, or no timestamp)."""
        if packet.pts is None or packet.size == 0:
            return None
        if (
            self._container is not None
            and packet.is_keyframe
            and arrival - self.segments[-1].start_time >= self.segment_s
        ):
            self.close()
        try:
            if self._container is None:
                if not packet.is_keyframe or self._source is None:
                    return None
                self._open(packet, arrival)
            segment = self.segments[-1]
            dts = packet.dts if packet.dts is not None else packet.pts
            packet.pts, packet.dts = packet.pts - segment.base_pts, dts - segment.base_pts
            packet.stream = self._stream
            self._container.mux(packet)
        except (OSError, av.error.FFmpegError) as exc:
            if _disk_full(exc, self.folder):
                self._stop_for(exc)
            if not (packet.is_keyframe and self.segments and self.segments[-1].packets and self._container is not None):
                raise
            # the stream's parameters changed at this keyframe (a new picture size): the muxer refuses it, so the
            # segment ends here and the keyframe begins the next one, made from the stream as it is now
            log.warning("recording %s: the stream changed at a keyframe (%s); a new segment starts", self.camera, exc)
            self.close()
            packet.pts, packet.dts = packet.pts + segment.base_pts, dts
            return self.write(packet, arrival)
        segment.packets += 1
        segment.duration_s = max(segment.duration_s, packet.pts * segment.time_base)
        return segment

    def _open(self, packet, arrival: float) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.fromtimestamp(arrival, timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        path = self.folder / f"{self.camera}-{stamp}.mp4"
        # fragmented MP4: every keyframe closes a fragment, so the file plays while it is still being written (the
        # player shows a live camera's last seconds) and stays playable if the process is killed
        self._container = av.open(str(path), "w", options=FRAGMENTED_MP4)
        self._stream = self._container.add_stream_from_template(self._source)
        # base on the decode timestamp: the file's first dts is then 0 and presentation times stay >= 0
        base = packet.dts if packet.dts is not None else packet.pts
        self.segments.append(Segment(path, arrival, base, packet.pts, float(self._source.time_base), self._connection))
        log.info("recording %s to %s", self.camera, path)

    def _stop_for(self, exc: BaseException) -> None:
        """The disk is full: close what is open (a segment without a packet is deleted: reid-app made it and it
        holds nothing) and raise :class:`RecordingStopped`."""
        container, self._container = self._container, None
        segment = self.segments[-1] if self.segments else None
        if container is not None:
            try:
                container.close()
            except (OSError, av.error.FFmpegError):
                pass
        if segment is not None and segment.packets == 0:
            self.segments.pop()
            segment.path.unlink(missing_ok=True)
        elif segment is not None and container is not None and self.on_segment is not None:
            self.on_segment(segment)  # playable up to its last whole fragment
        raise RecordingStopped(
            f"recording of camera {self.camera} stopped: the disk of {self.folder} is full "
            f"({getattr(exc, 'strerror', None) or exc}); free some space and start it again"
        )

    def close(self) -> None:
        """Finish the open segment (it becomes playable) and report it to ``on_segment``."""
        if self._container is None:
            return
        container, self._container = self._container, None
        try:
            container.close()
        except av.error.FFmpegError as exc:
            log.warning("recording %s: closing %s failed (%s)", self.camera, self.segments[-1].path, exc)
            return
        if self.on_segment is not None:
            self.on_segment(self.segments[-1])
