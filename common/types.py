"""Plain data types shared between the layers (no torch, no Qt, no SQL).

Coordinates are pixels in the frame the object was seen in, boxes are ``(x1, y1, x2, y2)`` with ``x2 > x1`` and
``y2 > y1``. Times are seconds: ``time_s`` is relative to the start of the video, ``timestamp`` is wall-clock
seconds since the Unix epoch (the video's start time plus ``time_s``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Optional

import numpy as np

#: Names of the 17 COCO keypoints, in the order every keypoint array in this project uses.
COCO_KEYPOINTS = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)

#: Body parts of the pose-guided local branch, top to bottom (JLML's m = 4 parts).
BODY_PARTS = ("head_shoulder", "upper_body", "upper_leg", "lower_leg")


@dataclass
class Frame:
    """One decoded video frame.

    Attributes:
        image: ``uint8`` array ``[H, W, 3]``, BGR channel order.
        index: frame index in the video (0-based, counted in decoded frames).
        time_s: presentation time in seconds from the start of the video.
        recorded: for a recorded live stream, the recording file that holds this frame and its presentation time
            in seconds into that file; None otherwise.
    """

    image: np.ndarray
    index: int
    time_s: float
    recorded: Optional[tuple[str, float]] = None


@dataclass
class Detection:
    """One tracked person in one frame.

    Attributes:
        track_id: the tracker's id, unique within one camera's video.
        box: ``float32 [4]`` ``(x1, y1, x2, y2)`` in frame pixels.
        score: detector confidence in ``[0, 1]``.
        keypoints: ``float32 [17, 3]`` COCO-17 ``(x, y, confidence)`` in frame pixels, or ``None`` when no pose
            estimate is available.
    """

    track_id: int
    box: np.ndarray
    score: float
    keypoints: Optional[np.ndarray] = None


@dataclass
class Observation:
    """A tracked person prepared for storage and (when sampled) re-id encoding.

    Attributes:
        camera: camera name.
        frame_index: frame index in the video.
        time_s: seconds from the start of the video.
        detection: the tracked detection.
        quality: quality score in ``[0, 1]`` (see ``pipelines.ingest.quality``); 0 when the quality gate rejected it.
        crop: ``uint8 [h, w, 3]`` BGR person crop when the observation is selected for encoding, else ``None``.
        part_boxes: ``float32 [P, 4]`` part boxes in crop pixels when selected (``P`` = the re-id network's part
            count; 4 by default, :data:`BODY_PARTS`).
        thumbnail: small JPEG of the crop, set for selected observations when their window closes.
        recorded: for a recorded live stream, the recording file of its frame and the frame's time in seconds
            into that file (``Frame.recorded``); None otherwise.
        fallback: for a crop the quality gate rejected (cut by the border, too occluded) but big enough to encode,
            the tiny quality it takes if its track shows no better crop (``pipelines.ingest.quality.fallback_quality``);
            0 otherwise.
    """

    camera: str
    frame_index: int
    time_s: float
    detection: Detection
    quality: float = 0.0
    crop: Optional[np.ndarray] = None
    part_boxes: Optional[np.ndarray] = None
    thumbnail: Optional[bytes] = None
    recorded: Optional[tuple[str, float]] = None
    fallback: float = 0.0

    @property
    def selected(self) -> bool:
        """True when this observation was chosen for re-id encoding."""
        return self.crop is not None


@dataclass
class StageTimes:
    """Seconds spent in each stage of ingest; used by the summary and ``benchmarks/ingest.py``."""

    decode: float = 0.0
    detect_track: float = 0.0
    pose: float = 0.0
    crop: float = 0.0
    encode: float = 0.0
    store: float = 0.0

    def add(self, other: "StageTimes") -> None:
        """Add ``other``'s seconds to this one in place."""
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, float]:
        """Stage name -> seconds."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class _TextEnum(str, Enum):
    """An enumeration whose members are their text: they compare equal to it, print as it, and go into JSON and
    tables as it."""

    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        return str.__format__(str(self), spec)


class IngestStatus(_TextEnum):
    """Where the ingest of one video stands (``CameraSummary.status``)."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class CameraState(_TextEnum):
    """Where a live camera stands (``pipelines.live.watch.CameraStatus.state``)."""

    CONNECTING = "connecting"
    LIVE = "live"
    RECONNECTING = "reconnecting"
    STOPPED = "stopped"


@dataclass
class CameraSummary:
    """What ingest did for one video; one row of the summary table."""

    camera: str
    video: str
    status: IngestStatus = IngestStatus.PENDING
    message: str = ""
    frames_analysed: int = 0
    #: Analysed frames on which detection was skipped because nothing moved (motion gating).
    frames_skipped: int = 0
    tracks: int = 0
    sightings: int = 0
    embeddings: int = 0
    seconds: float = 0.0
    times: StageTimes = field(default_factory=StageTimes)

    @property
    def frames_per_second(self) -> float:
        """Analysed frames per wall-clock second of ingest."""
        return self.frames_analysed / self.seconds if self.seconds > 0 else 0.0
