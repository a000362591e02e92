"""Media of an evidence export: H.264 clips with the facts burned in (PyAV + libx264), full-resolution person crops
cut from the source video, and SHA-256 digests of files."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Optional, Sequence

import av
import cv2
import numpy as np

from common.boxes import pixel_bounds
from common.errors import InputVideoError
from pipelines.evidence.redaction import BystanderBoxes, blur_bystanders
from pipelines.ingest.video import FrameReader

#: JPEG quality of exported person crops (evidence: near lossless).
CROP_JPEG_QUALITY = 95


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a whole file, hex (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class SightingBox:
    """One sighting to draw or crop: database id, frame index in the video, box ``(x1, y1, x2, y2)`` in pixels."""

    id: int
    frame_index: int
    box: tuple[float, float, float, float]


class H264Writer:
    """Writes BGR frames to an H.264 MP4 (yuv420p, plays in browsers and the usual desktop players).

    Args:
        path: the ``.mp4`` to write.
        fps: frame rate (frames/s).
        width, height: frame size in pixels; odd sizes are padded by one pixel (H.264 4:2:0 needs even sizes).

    Raises:
        av.error.FFmpegError: the file cannot be written.
    """

    def __init__(self, path: Path, fps: float, width: int, height: int):
        self.width, self.height = width + width % 2, height + height % 2
        self.container = av.open(str(path), "w")
        self.stream = self.container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        self.stream.width, self.stream.height = self.width, self.height
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = {"crf": "18", "preset": "veryfast"}

    def write(self, bgr: np.ndarray) -> None:
        """Append one ``uint8 [H, W, 3]`` BGR frame."""
        if bgr.shape[:2] != (self.height, self.width):
            bgr = cv2.copyMakeBorder(
                bgr, 0, self.height - bgr.shape[0], 0, self.width - bgr.shape[1], cv2.BORDER_CONSTANT
            )
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(bgr), format="bgr24")
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


def burn_in(frame: np.ndarray, lines: Sequence[str]) -> None:
    """Write ``lines`` top-left on ``frame`` (in place), white on a dark band, scaled to the frame height."""
    scale = max(0.5, frame.shape[0] / 900)
    thickness = max(1, int(round(2 * scale)))
    y = 0
    for line in lines:
        (w, h), base = cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, 0.8 * scale, thickness)
        cv2.rectangle(frame, (0, y), (w + int(16 * scale), y + h + base + int(12 * scale)), (0, 0, 0), -1)
        cv2.putText(
            frame,
            line,
            (int(8 * scale), y + h + int(6 * scale)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.8 * scale,
            (255, 255, 255),
            thickness,
            cv2.LINE_AA,
        )
        y += h + base + int(12 * scale)


def cut_clip(
    video_path: str,
    fps: float,
    frame_count: int,
    sightings: Sequence[SightingBox],
    path: Path,
    first_frame: int,
    last_frame: int,
    caption,
    bystanders: Optional[BystanderBoxes] = None,
) -> int:
    """Cut frames ``first_frame..last_frame`` of a video to an H.264 MP4 with the person boxed and the facts
    burned in.

    Args:
        caption: ``caption(frame_index) -> list[str]``, the lines burned into that frame.
        bystanders: the other people of the video, blurred in every frame (``pipelines.evidence.redaction``); None
            leaves the frames as they are.

    Returns:
        Frames written (0: the source could not be opened).
    """
    capture = cv2.VideoCapture(video_path)
    if not capture.isOpened():
        return 0
    boxes = {s.frame_index: s.box for s in sightings}
    known = np.array(sorted(boxes))
    hold = max(1, int(round(fps)))  # a box is shown until the next sighting, at most one second
    writer: Optional[H264Writer] = None
    written = 0
    try:
        capture.set(cv2.CAP_PROP_POS_FRAMES, first_frame)
        for frame_index in range(first_frame, min(last_frame, frame_count - 1) + 1):
            ok, frame = capture.read()
            if not ok:
                break
            if writer is None:
                path.parent.mkdir(parents=True, exist_ok=True)
                writer = H264Writer(path, fps, frame.shape[1], frame.shape[0])
            subject = None
            if len(known):
                i = np.searchsorted(known, frame_index, side="right") - 1
                if i >= 0 and frame_index - known[i] <= hold:
                    subject = boxes[int(known[i])]
            if bystanders is not None:
                blur_bystanders(frame, bystanders.at(frame_index), subject)
            if subject is not None:
                x1, y1, x2, y2 = (int(round(v)) for v in subject)
                cv2.rectangle(frame, (x1, y1), (x2, y2), (0, 0, 255), max(2, frame.shape[0] // 300))
            burn_in(frame, caption(frame_index))
            writer.write(frame)
            written += 1
    finally:
        capture.release()
        if writer is not None:
            writer.close()
    return written


def full_crops(
    video_path: str, sightings: Sequence[SightingBox], bystanders: Optional[BystanderBoxes] = None
) -> dict[int, bytes]:
    """JPEG crops of the sightings' boxes at the source video's full resolution, by sighting id (a sighting whose
    frame cannot be read is absent; an unopenable video gives ``{}``). With ``bystanders``, the other people's
    boxes that reach into a crop are blurred there, except over the middle of the person's own box (its inner
    70% of the width: where the person is when a bystander overlaps their box's edge).

    Frames are read in order, decoding through gaps of up to 120 frames instead of seeking: seeks dominated the
    export (58 crops of a lab camera: 17 s of seeking against about 1 s of decoding straight through)."""
    try:
        reader = FrameReader(video_path, max_skip=120)
    except InputVideoError:
        return {}
    crops = {}
    try:
        for s in sorted(sightings, key=lambda s: s.frame_index):
            frame = reader.read(s.frame_index)
            if frame is None:
                continue
            h, w = frame.shape[:2]
            x1, y1, x2, y2 = pixel_bounds(s.box, w, h)
            if x2 <= x1 or y2 <= y1:
                continue
            if bystanders is not None:
                inset = 0.15 * (s.box[2] - s.box[0])
                near = [b for b in bystanders.at(s.frame_index) if b[0] < x2 and b[2] > x1 and b[1] < y2 and b[3] > y1]
                if near:
                    frame = frame.copy()
                    blur_bystanders(frame, near, (s.box[0] + inset, s.box[1], s.box[2] - inset, s.box[3]))
            ok, buf = cv2.imencode(".jpg", frame[y1:y2, x1:x2], [cv2.IMWRITE_JPEG_QUALITY, CROP_JPEG_QUALITY])
            if ok:
                crops[s.id] = buf.tobytes()
    finally:
        reader.close()
    return crops
