"""Video sources: probing a file and decoding frames at an analysis rate with their real timestamps (PyAV), and
random access to single frames for players (:class:`FrameReader`, OpenCV)."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator, Optional

import av
import cv2
import numpy as np

from common.errors import InputVideoError
from common.types import Frame

log = logging.getLogger(__name__)

_TIMESTAMP_CHECK_FRAMES = 30

_open_decoders = 0
_open_decoders_lock = threading.Lock()


def file_safe_name(name: str) -> str:
    """``name`` (a camera name) usable as one file or folder name: characters other than letters, digits, ``-``,
    ``_`` and ``.`` become ``_``, leading and trailing dots go (never ``.``, ``..`` or a hidden file); ``camera``
    when nothing is left."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name)).strip(".") or "camera"


def open_decoders() -> int:
    """How many :meth:`VideoSource.frames` decoders are open in this process right now (0 once every ingest has
    ended, whether it finished, failed or was stopped)."""
    return _open_decoders


def _count_decoder(delta: int) -> None:
    global _open_decoders
    with _open_decoders_lock:
        _open_decoders += delta


@dataclass
class VideoProbe:
    """Facts about a video file.

    Attributes:
        path: absolute path.
        fps: the stream's average frame rate (frames/s).
        frame_count: frames in the stream (container value, else duration x fps; may be an estimate).
        width, height: frame size in pixels.
        duration_s: duration in seconds.
        creation_time: wall-clock start from the container's ``creation_time`` tag (seconds since the epoch), or
            None when the container has none.
        timestamps_reliable: the decoded frames' presentation times increase strictly (checked on the first
            frames). Some containers (H.264 in AVI) hand out packet order times; then ``index / fps`` is used.
        variable_rate: the frames' spacing disagrees with the container's rate (a variable-frame-rate file); then
            ``fps`` and ``frame_count`` are measured by counting the stream's packets.
    """

    path: Path
    fps: float
    frame_count: int
    width: int
    height: int
    duration_s: float
    creation_time: Optional[float]
    timestamps_reliable: bool = True
    variable_rate: bool = False


def fingerprint(path: str | Path, chunk: int = 1 << 20) -> str:
    """Content fingerprint of a file: SHA-256 over its size and three 1 MiB samples (head, middle, tail).

    Cheap for multi-GB recordings and stable across renames/copies, so re-ingesting the same footage from another
    path is recognised.
    """
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as fh:
        for offset in sorted({0, max(0, size // 2 - chunk // 2), max(0, size - chunk)}):
            fh.seek(offset)
            digest.update(fh.read(chunk))
    return digest.hexdigest()


def _parse_creation_time(tags: dict) -> Optional[float]:
    text = tags.get("creation_time")
    if not text:
        return None
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if stamp.year < 1990 or stamp.year >= 2200:  # muxers write 1970/1904 when the clock was unknown
        return None
    return stamp.timestamp()


def _open(path: Path):
    if not path.exists():
        raise InputVideoError(f"video {path} does not exist")
    if path.is_dir():
        raise InputVideoError(f"{path} is a directory, not a video file; give the video files inside it")
    if not stat.S_ISREG(path.stat().st_mode):
        raise InputVideoError(f"video {path} is not a regular file (a FIFO, device or socket); give a video file")
    if not os.access(path, os.R_OK):
        raise InputVideoError(f"video {path} is not readable (permission denied)")
    if path.stat().st_size == 0:
        raise InputVideoError(f"video {path} is empty (0 bytes)")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise InputVideoError(
            f"{path} is not a readable video (truncated, corrupted or not a video file: "
            f"{getattr(exc, 'strerror', None) or exc})"
        ) from exc
    if not container.streams.video:
        container.close()
        raise InputVideoError(f"{path} has no video stream")
    return container


def probe_video(path: str | Path) -> VideoProbe:
    """Open a video and read its properties; also decodes its first frame to prove it is readable.

    Raises:
        InputVideoError: missing, a directory, unreadable, empty, not a video, or no decodable frame.
    """
    path = Path(path).expanduser().absolute()
    container = _open(path)
    try:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 0) or 25.0
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = 0.0
        frame_count = int(stream.frames) if stream.frames else int(round(duration * fps))
        times: list[float] = []
        first = None
        try:
            for frame in container.decode(stream):
                first = first or frame
                times.append(frame.time if frame.time is not None else float("nan"))
                if len(times) >= _TIMESTAMP_CHECK_FRAMES:
                    break
        except av.error.FFmpegError as exc:
            if first is None:
                raise InputVideoError(f"{path} could not be decoded (corrupted video: {exc})") from exc
        if first is None or frame_count == 0:
            raise InputVideoError(f"video {path} has no frames")
        tags = dict(container.metadata)
        tags.update({k: v for k, v in stream.metadata.items() if k not in tags})
        reliable = bool(np.all(np.diff(np.array(times)) > 0))
        variable = reliable and _rate_disagrees(fps, times)
        if variable:
            frame_count = _count_packets(path)
            fps = frame_count / duration if duration > 0 else (len(times) - 1) / (times[-1] - times[0])
        return VideoProbe(
            path=path,
            fps=fps,
            frame_count=frame_count,
            width=int(first.width),
            height=int(first.height),
            duration_s=duration or frame_count / fps,
            creation_time=_parse_creation_time(tags),
            timestamps_reliable=reliable,
            variable_rate=variable,
        )
    finally:
        container.close()


def _rate_disagrees(fps: float, times: list[float]) -> bool:
    """The first frames' mean spacing differs from ``1 / fps`` by more than half (a variable-rate file, whose
    container states a time base such as 1000 instead of a frame rate)."""
    if len(times) < 3 or not times[-1] > times[0]:
        return False
    measured = (len(times) - 1) / (times[-1] - times[0])
    return not 1 / 1.5 < fps / measured < 1.5


def _count_packets(path: Path) -> int:
    """Video packets in the file (one per frame), read without decoding."""
    container = av.open(str(path))
    try:
        stream = container.streams.video[0]
        return sum(1 for packet in container.demux(stream) if packet.size)
    finally:
        container.close()


class VideoSource:
    """Decodes a video file and yields frames at an analysis rate.

    Args:
        path: the video file.
        analysis_fps: frames per second to analyse (capped at the video's own rate; must be > 0).
        max_duration_s: stop after this many seconds of video (None: the whole video).

    Raises:
        InputVideoError: see :func:`probe_video`.
        ValueError: ``analysis_fps`` <= 0.
    """

    def __init__(self, path: str | Path, analysis_fps: float, max_duration_s: Optional[float] = None):
        if not analysis_fps > 0:
            raise ValueError(f"analysis rate must be > 0 frames/s, got {analysis_fps}")
        self.probe = probe_video(path)
        self.path = self.probe.path
        self.analysis_fps = min(float(analysis_fps), self.probe.fps)
        self.max_duration_s = max_duration_s
        #: Set when frames were lost (damaged packets, a truncated file): a description of the problem.
        self.warning: Optional[str] = None
        self.frames_decoded = 0
        #: Frames that could not be decoded (damaged packets skipped).
        self.frames_lost = 0

    @property
    def expected_frames(self) -> int:
        """Analysed frames this source should yield (an estimate when the container's count is)."""
        duration = self.probe.duration_s
        if self.max_duration_s is not None:
            duration = min(duration, self.max_duration_s)
        return max(1, int(np.ceil(duration * self.analysis_fps - 1e-6)))

    def frames(self, should_stop: Callable[[], bool] = lambda: False) -> Iterator[Frame]:
        """Yield analysed frames in order: one every ``1 / analysis_fps`` seconds of presentation time
        (``should_stop`` is for the live sources' interface; a file's consumer stops by closing the generator).

        Frames in between are decoded (codecs need them) but not converted. A damaged packet is skipped and
        counted in :attr:`frames_lost` (decoding goes on with the next one); a file that ends early or loses
        frames sets :attr:`warning`.
        """
        container = _open(self.path)
        _count_decoder(1)
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            period = 1.0 / self.analysis_fps
            next_time = 0.0
            index = -1
            start_pts_time = None
            for frame in self._decode(container, stream):
                index += 1 + self._pending_lost
                self._pending_lost = 0
                self.frames_decoded += 1
                t = (
                    float(frame.time)
                    if frame.time is not None and self.probe.timestamps_reliable
                    else index / self.probe.fps
                )
                if start_pts_time is None:
                    start_pts_time = t
                t -= start_pts_time
                if self.max_duration_s is not None and t >= self.max_duration_s:
                    break
                if t + 1e-6 < next_time:
                    continue
                next_time += period * max(1, int((t + 1e-6 - next_time) // period) + 1)
                yield Frame(image=frame.to_ndarray(format="bgr24"), index=index, time_s=t)
            self._report()
        finally:
            container.close()
            _count_decoder(-1)

    _pending_lost = 0

    def _decode(self, container, stream) -> Iterator:
        """Decoded frames, packet by packet; a packet the decoder rejects is counted as lost and skipped."""
        try:
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.EOFError:
                    return
                except av.error.FFmpegError as exc:
                    if packet.size:
                        self.frames_lost += 1
                        self._pending_lost += 1
                        log.info("%s: skipped a damaged packet at %s (%s)", self.path, packet.pts, exc)
                    continue
                yield from frames
        except av.error.FFmpegError as exc:  # the container itself ends in garbage (a truncated file)
            self.warning = f"decoding stopped after frame {self.frames_decoded} ({exc}); the file may be truncated"
            log.warning("%s: %s", self.path, self.warning)

    def _report(self) -> None:
        if self.frames_lost:
            many = self.frames_lost > 1
            lost = (
                f"{self.frames_lost} damaged frame{'s' if many else ''} could not be decoded and "
                f"{'were' if many else 'was'} skipped"
            )
            self.warning = f"{lost}; {self.warning}" if self.warning else lost
        if self.warning is None and self.max_duration_s is None and self.frames_decoded < 0.9 * self.probe.frame_count:
            self.warning = (
                f"only {self.frames_decoded} of {self.probe.frame_count} frames could be decoded; "
                f"the file may be truncated"
            )


class FrameReader:
    """Random access to the frames of one video file, cheap when frames are read in order (playback).

    Reading the next frame decodes one frame; a jump of up to :attr:`max_skip` frames forward decodes through;
    anything else seeks. Not thread-safe: use one reader per thread.

    Args:
        path: the video file.
        max_skip: forward jumps up to this many frames are decoded through instead of seeking (an OpenCV seek
            decodes from the previous keyframe and costs about 0.3 s on 1288 x 728 H.264, 60-70 frames' decoding).

    Raises:
        InputVideoError: the file is missing or OpenCV cannot open it.
    """

    def __init__(self, path: str | Path, max_skip: int = 48):
        self.max_skip = int(max_skip)
        self.path = Path(path)
        if not self.path.is_file():
            raise InputVideoError(f"video {self.path} does not exist (moved or deleted since it was ingested?)")
        self._capture = cv2.VideoCapture(str(self.path))
        if not self._capture.isOpened():
            raise InputVideoError(f"video {self.path} cannot be opened for playback")
        self._next = 0

    def read(self, frame_index: int) -> Optional[np.ndarray]:
        """Frame ``frame_index`` as ``uint8 [H, W, 3]`` BGR, or None past the end of the video."""
        frame_index = max(0, int(frame_index))
        skip = frame_index - self._next
        if skip < 0 or skip > self.max_skip:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, frame_index)
        else:
            for _ in range(skip):
                if not self._capture.grab():
                    return None
        ok, image = self._capture.read()
        self._next = frame_index + 1 if ok else -1
        return image if ok else None

    def close(self) -> None:
        """Release the decoder."""
        self._capture.release()
