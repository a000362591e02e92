"""Live camera streams as frame sources: ``rtsp://`` (TCP or UDP transport), ``http(s)://``, ``udp://`` and local
webcams (``/dev/videoN``), decoded by PyAV/FFmpeg.

A reader thread decodes the stream continuously (a live source cannot wait) and keeps only the newest frame; the
consumer takes one every ``1 / analysis_fps`` seconds of wall-clock time, so a slow consumer drops frames instead of
falling behind live. Frame times are wall-clock arrival times. A stalled or dropped stream is reopened with
exponential backoff. URLs are shown only through :func:`redact_url`: user names, passwords and secret query values
never reach logs or error messages.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Optional
from urllib.parse import urlsplit

import av

from common.errors import InputVideoError
from common.redaction import redact_text, redact_url
from common.types import Frame
from pipelines.live.recording import RecordingStopped, Segment, SegmentRecorder

log = logging.getLogger(__name__)

#: URL schemes read as live streams (anything FFmpeg opens as a network protocol).
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "rtp", "srt", "tcp")


def is_stream(source: str) -> bool:
    """True when ``source`` names a live stream (a URL of :data:`STREAM_SCHEMES` or a ``/dev/video*`` device)."""
    text = str(source)
    return urlsplit(text).scheme.lower() in STREAM_SCHEMES or text.startswith("/dev/video")


@dataclass(frozen=True)
class StreamOptions:
    """How a stream is opened and kept open.

    Attributes:
        rtsp_transport: ``tcp`` (default: no loss, passes NAT) or ``udp`` for ``rtsp://`` URLs.
        open_timeout_s: seconds to wait for the stream to open before retrying.
        read_timeout_s: seconds without a packet after which the stream counts as stalled and is reopened.
        backoff_initial_s: first wait before reopening; doubled after each failed attempt, up to ``backoff_max_s``.
        backoff_max_s: longest wait between attempts.
        give_up_after_s: stop trying after this many seconds without a frame (None: never, a camera that comes
            back is picked up again).
    """

    rtsp_transport: str = "tcp"
    open_timeout_s: float = 10.0
    read_timeout_s: float = 5.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    give_up_after_s: Optional[float] = None


@dataclass
class StreamFacts:
    """What is known of a stream once it has delivered frames: size in pixels, the stream's nominal rate
    (frames/s, 0 when it declares none) and the wall-clock time of its first frame (seconds since the epoch)."""

    width: int = 0
    height: int = 0
    fps: float = 0.0
    start_time: Optional[float] = None


class StreamSource:
    """Frames of one live stream at an analysis rate, with wall-clock times.

    Args:
        url: the stream (see :data:`STREAM_SCHEMES`) or a ``/dev/videoN`` webcam. Kept private; :attr:`name` is
            the redacted form.
        analysis_fps: frames analysed per second of wall-clock time, > 0.
        max_duration_s: stop after this many seconds from the first frame (None: until stopped).
        options: transport, timeouts and reconnection.
        clock: wall-clock time in seconds since the epoch (tests give their own).
        recorder: records the stream's packets as MP4 segments while it is analysed; each yielded frame then
            says where it was recorded (``Frame.recorded``).

    A source is used once: one call of :meth:`frames` or :meth:`record`.

    Raises:
        ValueError: ``analysis_fps`` is not > 0.
    """

    def __init__(
        self,
        url: str,
        analysis_fps: float,
        max_duration_s: Optional[float] = None,
        options: StreamOptions = StreamOptions(),
        clock: Callable[[], float] = time.time,
        recorder: Optional[SegmentRecorder] = None,
    ):
        if not analysis_fps > 0:
            raise ValueError(f"analysis rate must be > 0 frames/s, got {analysis_fps}")
        self._url = str(url)
        self.name = redact_url(self._url)
        self.analysis_fps = float(analysis_fps)
        self.max_duration_s = max_duration_s
        self.options = options
        self.clock = clock
        self.recorder = recorder
        self.facts = StreamFacts()
        #: Frames decoded from the stream; handed out for analysis; decoded but never handed out (between analysis
        #: times, or overtaken by a newer frame while the consumer was busy); times the stream was reopened.
        self.frames_decoded = 0
        self.frames_analysed = 0
        self.frames_skipped = 0
        self.reconnects = 0
        #: Seconds between the arrival of the last frame handed out and the moment it was handed out.
        self.lag_s = 0.0
        #: The last connection problem (redacted), or None.
        self.last_error: Optional[str] = None
        #: Why the stream was stopped for good (the recording disk is full), or None.
        self.stopped_because: Optional[str] = None
        #: True while frames (or, recording only, packets) arrive on the current connection.
        self.connected = False
        #: (frame, arrival time, decoded count, where it was recorded or None)
        self._latest: Optional[tuple[av.VideoFrame, float, int, Optional[tuple[str, float]]]] = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._reader_done = threading.Event()
        self._decode_frames = True

    def frames(self, should_stop: Callable[[], bool] = lambda: False) -> Iterator[Frame]:
        """Yield analysed frames: about one per ``1 / analysis_fps`` seconds, each the newest decoded frame, with
        ``index`` counting decoded frames from 0 and ``time_s`` the seconds from the first frame's arrival
        (:attr:`facts` ``.start_time``).

        Ends after ``max_duration_s``, when ``should_stop()`` is true, or when the stream cannot be reopened within
        ``options.give_up_after_s`` (:attr:`last_error` says why). Closing the generator stops the reader thread.

        Raises:
            InputVideoError: the stream gave up without delivering a single frame.
        """
        reader = self._start_reader()
        period = 1.0 / self.analysis_fps
        taken = 0  # decoded-frame count of the last frame handed out
        next_time: Optional[float] = None  # arrival time from which the next frame is due
        try:
            while True:
                latest = None
                with self._cond:
                    while not should_stop():
                        candidate = self._latest
                        if (
                            candidate is not None
                            and candidate[2] != taken
                            and (next_time is None or candidate[1] >= next_time - 0.25 * period)
                        ):
                            latest = candidate
                            break
                        if self._reader_done.is_set() or self._past_duration():
                            break  # given up, or the time is over while the camera is down
                        self._cond.wait(0.05)
                if latest is None:
                    break
                frame, arrival, count, recorded = latest
                t = arrival - self.facts.start_time
                if self.max_duration_s is not None and t >= self.max_duration_s:
                    break
                self.frames_skipped += count - taken - 1
                taken = count
                next_time = (
                    arrival + period if next_time is None or next_time + period < arrival else next_time + period
                )
                self.lag_s = max(0.0, self.clock() - arrival)
                self.frames_analysed += 1
                yield Frame(image=frame.to_ndarray(format="bgr24"), index=count - 1, time_s=t, recorded=recorded)
        finally:
            self._stop_reader(reader)
        if taken == 0 and self.last_error is not None and not should_stop():
            raise InputVideoError(f"stream {self.name} delivered no frame: {self.last_error}")

    def _past_duration(self) -> bool:
        start = self.facts.start_time
        return self.max_duration_s is not None and start is not None and self.clock() - start >= self.max_duration_s

    def record(
        self,
        duration_s: float,
        should_stop: Callable[[], bool] = lambda: False,
        on_progress: Optional[Callable[[float], None]] = None,
    ) -> list[Segment]:
        """Record ``duration_s`` seconds of wall-clock time from the first recorded packet into :attr:`recorder`
        without decoding (remux only), reconnecting as :meth:`frames` does; returns the finished segments.

        Args:
            on_progress: called about twice a second with the seconds recorded so far.

        Raises:
            ValueError: the source has no recorder.
            InputVideoError: nothing could be recorded before giving up (the redacted reason in the message).
        """
        if self.recorder is None:
            raise ValueError("record() needs a SegmentRecorder")
        self._decode_frames = False
        reader = self._start_reader()
        try:
            while not should_stop() and not self._reader_done.wait(0.5):
                start = self.facts.start_time
                if start is not None:
                    elapsed = self.clock() - start
                    if on_progress is not None:
                        on_progress(min(elapsed, duration_s))
                    if elapsed >= duration_s:
                        break
        finally:
            self._stop_reader(reader)
        segments = [s for s in self.recorder.segments if s.packets > 0]
        if not segments and self.stopped_because:
            raise InputVideoError(self.stopped_because)
        if not segments and not should_stop():
            raise InputVideoError(f"stream {self.name} could not be recorded: {self.last_error or 'no keyframe came'}")
        return segments

    def _open(self):
        # FFmpeg's default stream analysis waits about 2.4 s for an RTSP camera; half a second is plenty for a
        # video stream whose parameters arrive with its first keyframe (0.3 s to the first frame on loopback)
        options = {"analyzeduration": "500000", "probesize": "500000"}
        if self._url.lower().startswith(("rtsp://", "rtsps://")):
            options["rtsp_transport"] = self.options.rtsp_transport
        fmt = "v4l2" if self._url.startswith("/dev/video") else None
        return av.open(
            self._url, format=fmt, options=options, timeout=(self.options.open_timeout_s, self.options.read_timeout_s)
        )

    def _read_forever(self) -> None:
        backoff = self.options.backoff_initial_s
        last_frame_at = time.monotonic()
        try:
            while not self._stop.is_set():
                try:
                    container = self._open()
                except (av.error.FFmpegError, OSError) as exc:
                    self._failed(exc)
                else:
                    try:
                        if self._decode(container):
                            backoff = self.options.backoff_initial_s
                            last_frame_at = time.monotonic()
                    finally:
                        container.close()
                if self._stop.is_set():
                    return
                give_up = self.options.give_up_after_s
                if give_up is not None and time.monotonic() - last_frame_at >= give_up:
                    log.warning(
                        "stream %s: giving up after %.0f s without a frame (%s)", self.name, give_up, self.last_error
                    )
                    return
                self.reconnects += 1
                log.info("stream %s: reconnecting in %.1f s (%s)", self.name, backoff, self.last_error)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.options.backoff_max_s)
        finally:
            if self.recorder is not None:
                self.recorder.close()
            self._reader_done.set()
            with self._cond:
                self._cond.notify_all()

    def _decode(self, container) -> bool:
        """Decode until the stream ends, fails or we are stopped; True when at least one frame came."""
        got = False
        try:
            stream = container.streams.video[0]
        except IndexError:
            self.last_error = "no video stream in it"
            return False
        stream.thread_type = "AUTO"
        if self.recorder is not None:
            self.recorder.new_connection(stream)
        try:
            for packet in container.demux(stream):
                arrival = self.clock()
                frames = []
                if self._decode_frames:
                    try:
                        frames = packet.decode()  # before recording it: the recorder rebases its timestamps
                    except av.error.InvalidDataError:  # a damaged packet, or one needing frames before the join
                        frames = []
                if (
                    frames
                    and self.facts.start_time is not None
                    and (frames[0].width, frames[0].height) != (self.facts.width, self.facts.height)
                ):
                    self._resized(frames[0])
                if self.recorder is not None and self.recorder.write(packet, arrival) is not None:
                    got = self.connected = True
                    if not self._decode_frames:
                        self._note_first(stream, arrival)
                for frame in frames:
                    recorded = None
                    if self.recorder is not None:
                        segment = self.recorder.segment_of(frame.pts)
                        if (
                            segment is not None
                            and segment.width
                            and (segment.width, segment.height) != (frame.width, frame.height)
                        ):
                            # the picture size changed inside this segment: its frames of the new size are not
                            # stored against it (crops would be cut from the wrong size); the next keyframe begins
                            # a segment of the new size
                            if segment is self.recorder.current:
                                self.recorder.close()
                            segment = None
                        if segment is not None:
                            recorded = (str(segment.path), segment.seconds_into(frame.pts))
                            if not segment.width:
                                segment.width, segment.height = frame.width, frame.height
                    with self._cond:
                        self._note_first(stream, arrival)
                        self.frames_decoded += 1
                        self._latest = (frame, arrival, self.frames_decoded, recorded)
                        self._cond.notify_all()
                    got = self.connected = True
                if self._stop.is_set():
                    break
            self.last_error = "the stream ended"
        except RecordingStopped as exc:  # nothing more can be stored: stop, never loop on new empty segments
            self.last_error = self.stopped_because = str(exc)
            log.warning("%s", exc)
            self._stop.set()
        except (av.error.FFmpegError, OSError) as exc:
            self._failed(exc)
        self.connected = False
        return got

    def _resized(self, frame) -> None:
        """The stream's picture size changed: the facts follow (the recorder starts a new segment where the
        stream's parameters changed, and each segment records its own size)."""
        log.warning(
            "stream %s: the picture changed from %dx%d to %dx%d",
            self.name,
            self.facts.width,
            self.facts.height,
            frame.width,
            frame.height,
        )
        self.facts = dataclasses.replace(self.facts, width=frame.width, height=frame.height)

    def _note_first(self, stream, arrival: float) -> None:
        """Record :attr:`facts` when the first frame (or, recording only, the first recorded packet) arrives."""
        if self.facts.start_time is None:
            rate = stream.average_rate or stream.guessed_rate
            self.facts = StreamFacts(stream.width, stream.height, float(rate) if rate else 0.0, arrival)

    def _start_reader(self) -> threading.Thread:
        reader = threading.Thread(target=self._read_forever, name=f"stream-{self.name}", daemon=True)
        reader.start()
        return reader

    def _stop_reader(self, reader: threading.Thread) -> None:
        """Stop the reader thread and wait for it (it closes the stream and the recorder's open segment)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        reader.join(self.options.read_timeout_s + self.options.open_timeout_s + 1.0)

    def _failed(self, exc: BaseException) -> None:
        self.last_error = redact_text(f"{type(exc).__name__}: {exc}".replace(self._url, self.name))
