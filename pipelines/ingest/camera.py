"""The per-camera pipeline: decode -> detect + track -> pose -> quality gate -> crop + part boxes -> sampling.

It runs in its own thread per camera and hands finished observations (whole sampling windows) to a callback; the
multi-camera ingest (``pipelines.ingest.files``) encodes them in batches across cameras and stores them.
"""

from __future__ import annotations

import time
from typing import Callable, Optional

import cv2
import numpy as np

from common.boxes import pixel_bounds
from common.types import Detection, Frame, Observation, StageTimes
from models.parts import part_boxes_from_keypoints
from models.pose import PoseEstimator
from models.tracking import PersonTracker
from pipelines.ingest.motion import MotionGate, MotionGateConfig
from pipelines.ingest.quality import (
    DuplicateConfig,
    QualityConfig,
    box_can_pass,
    crop_quality,
    fallback_quality,
    suppress_duplicates,
    wants_pose,
)
from pipelines.ingest.sampling import SamplingConfig, TrackSampler
from pipelines.ingest.video import VideoSource
from pipelines.live.stream import StreamSource

THUMBNAIL_HEIGHT = 128  # pixels
THUMBNAIL_JPEG_QUALITY = 85

#: Receives finished observations and the number of frames analysed so far.
Emit = Callable[[list[Observation], int], None]


def make_crop(frame: Frame, obs: Observation, num_parts: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Cut a person out of a frame and place its body-part boxes.

    Args:
        num_parts: the re-id network's part count (2, 4 or 6; ``ReIDEncoder.num_parts``).

    Returns:
        ``(crop, part_boxes)``: ``uint8 [h, w, 3]`` BGR copy of the box region (clipped to the frame) and
        ``float32 [num_parts, 4]`` part boxes in crop pixels (keypoint-guided where possible, see ``models.parts``).
    """
    h, w = frame.image.shape[:2]
    x1, y1, x2, y2 = obs.detection.box
    ix1, iy1, ix2, iy2 = pixel_bounds((x1, y1, x2, y2), w, h)
    crop = frame.image[iy1:iy2, ix1:ix2].copy()
    keypoints = None
    if obs.detection.keypoints is not None:
        keypoints = obs.detection.keypoints.copy()
        keypoints[:, 0] -= ix1
        keypoints[:, 1] -= iy1
    boxes, _ = part_boxes_from_keypoints(keypoints, crop.shape[0], crop.shape[1], num_parts=num_parts)
    return crop, boxes


def follow_box(keypoints: np.ndarray, old_box: np.ndarray, new_box: np.ndarray) -> np.ndarray:
    """Move ``float32 [17, 3]`` keypoints (frame pixels) from a person's old box to their new one: each point keeps
    its relative position in the box (x and y scaled with the box's width and height); confidences unchanged."""
    out = keypoints.copy()
    ow, oh = max(old_box[2] - old_box[0], 1e-3), max(old_box[3] - old_box[1], 1e-3)
    out[:, 0] = (keypoints[:, 0] - old_box[0]) / ow * (new_box[2] - new_box[0]) + new_box[0]
    out[:, 1] = (keypoints[:, 1] - old_box[1]) / oh * (new_box[3] - new_box[1]) + new_box[1]
    return out


def encode_thumbnail(crop: np.ndarray) -> bytes:
    """Small JPEG of a crop (``THUMBNAIL_HEIGHT`` pixels high, aspect kept)."""
    h, w = crop.shape[:2]
    scale = THUMBNAIL_HEIGHT / max(h, 1)
    small = cv2.resize(crop, (max(1, int(round(w * scale))), THUMBNAIL_HEIGHT), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, THUMBNAIL_JPEG_QUALITY])
    return buf.tobytes() if ok else b""


class CameraPipeline:
    """Analyses one camera's video.

    Args:
        camera: camera name.
        source: the decoded video at its analysis rate (a ``VideoSource``, or a live ``StreamSource``).
        tracker: this camera's own detector + tracker.
        pose: pose backend (``DetectorKeypoints`` when the detector is a pose model).
        quality: quality gate thresholds.
        sampling: per-track sampling bounds.
        num_parts: body-part boxes per crop, as the re-id network expects (2, 4 or 6).
        motion: motion gating (frames without motion skip detection and pose; the last detections are tracked
            again).
        pose_interval_s: estimate a tracked person's pose at most once per this many seconds of video; in between
            their last keypoints follow their box (moved and scaled with it). 0: every analysed frame.
        duplicates: when a second box of one person in a frame is dropped (``pipelines.ingest.quality``).
    """

    def __init__(
        self,
        camera: str,
        source: "VideoSource | StreamSource",
        tracker: PersonTracker,
        pose: PoseEstimator,
        quality: QualityConfig = QualityConfig(),
        sampling: SamplingConfig = SamplingConfig(),
        num_parts: int = 4,
        motion: MotionGateConfig = MotionGateConfig(),
        pose_interval_s: float = 0.0,
        duplicates: DuplicateConfig = DuplicateConfig(),
    ):
        self.camera = camera
        self.source = source
        self.tracker = tracker
        self.pose = pose
        self.quality = quality
        self.sampler = TrackSampler(sampling)
        self.times = StageTimes()
        self.frames_analysed = 0
        self.num_parts = num_parts
        self.motion = MotionGate(motion)
        self.pose_interval_s = pose_interval_s
        self.duplicates = duplicates
        #: Boxes dropped as a second box of a person already boxed in the same frame.
        self.duplicates_dropped = 0
        self._age: dict[int, int] = {}  # track id -> frames seen
        #: track id -> (box, keypoints, video time of the pose estimate) of its last sighting
        self._last_pose: dict[int, tuple[np.ndarray, np.ndarray, float]] = {}

    @property
    def estimates_pose(self) -> bool:
        """True when this camera's people get pose estimates (keypoints), so a track without any is no person."""
        return self.pose.name != "none"

    @property
    def frames_skipped(self) -> int:
        """Analysed frames that skipped detection because nothing moved."""
        return self.motion.skipped

    def run(
        self,
        emit: Emit,
        should_stop: Callable[[], bool] = lambda: False,
        on_frame: Optional[Callable[[Frame, list[Detection]], None]] = None,
        flush_on_stop: bool = False,
    ) -> StageTimes:
        """Process the whole video or stream (or until ``should_stop()``), calling ``emit`` after every analysed
        frame and ``on_frame(frame, detections)`` (e.g. a live view) once its people are tracked and posed.
        ``flush_on_stop``: emit the observations still buffered when stopped too (a live camera's last seconds;
        an interrupted file is redone instead).

        Returns:
            Seconds per stage (decode, detect_track, pose, crop; encode/store happen downstream).
        """
        frames = self.source.frames(should_stop)
        try:
            while not should_stop():
                t0 = time.perf_counter()
                frame = next(frames, None)
                t1 = time.perf_counter()
                self.times.decode += t1 - t0
                if frame is None:
                    break
                height, width = frame.image.shape[:2]
                moved = self.motion.should_detect(frame.image)
                detections = self.tracker.update(frame.image) if moved else self.tracker.repeat(frame.image)
                detections, dropped = suppress_duplicates(detections, self._age, self.duplicates)
                self.duplicates_dropped += dropped
                if len(self._age) > 4096:  # a live camera runs for days: forget the tracks long gone
                    self._age = {d.track_id: self._age.get(d.track_id, 0) for d in detections}
                for det in detections:
                    self._age[det.track_id] = self._age.get(det.track_id, 0) + 1
                t2 = time.perf_counter()
                self.times.detect_track += t2 - t1
                self._estimate_pose(frame, detections, moved)
                t3 = time.perf_counter()
                self.times.pose += t3 - t2
                if on_frame is not None:
                    on_frame(frame, detections)
                released: list[Observation] = []
                for det in detections:
                    obs = Observation(
                        camera=self.camera,
                        frame_index=frame.index,
                        time_s=frame.time_s,
                        detection=det,
                        quality=crop_quality(det, width, height, self.quality),
                        recorded=frame.recorded,
                    )
                    if obs.quality == 0:
                        obs.fallback = fallback_quality(det, self.quality)
                    released += self.sampler.add(obs, lambda o, f=frame: make_crop(f, o, self.num_parts))
                released += self.sampler.release_stale(frame.time_s)
                self._thumbnails(released)
                self.frames_analysed += 1
                self.times.crop += time.perf_counter() - t3
                emit(released, self.frames_analysed)
            if flush_on_stop or not should_stop():
                t0 = time.perf_counter()
                released = self.sampler.release_all()
                self._thumbnails(released)
                self.times.crop += time.perf_counter() - t0
                emit(released, self.frames_analysed)
        finally:
            frames.close()  # closes the container even when a stage raised
        return self.times

    def _estimate_pose(self, frame: Frame, detections: list, moved: bool) -> None:
        """Keypoints for the frame's people: estimated for those due (see ``pose_interval_s``; none when nothing
        moved), carried along with the box for the others. People the quality gate rejects by size or border alone
        (``pipelines.ingest.quality.box_can_pass``) get none, nor do people too small for a pose worth its cost
        (``pipelines.ingest.quality.wants_pose``; they are encoded without one)."""
        due, posed = [], []  # posed: (detection, video time of its pose estimate)
        height, width = frame.image.shape[:2]
        for det in detections:
            if det.keypoints is None and not (
                box_can_pass(det.box, width, height, self.quality) and wants_pose(det.box, self.quality)
            ):
                continue
            last = self._last_pose.get(det.track_id)
            if last is None or (moved and frame.time_s - last[2] >= self.pose_interval_s - 1e-6):
                due.append(det)
                posed.append((det, frame.time_s))
            else:
                posed.append((det, last[2]))
                if last[1] is not None and det.keypoints is None:  # a pose detector's own keypoints are kept
                    det.keypoints = follow_box(last[1], last[0], det.box)
        if due:
            self.pose.estimate(frame.image, due)
        for det, when in posed:
            self._last_pose[det.track_id] = (det.box, det.keypoints, when)
        if len(self._last_pose) > 4 * max(len(detections), 16):  # forget tracks long gone
            seen = {d.track_id for d in detections}
            self._last_pose = {k: v for k, v in self._last_pose.items() if k in seen}

    @staticmethod
    def _thumbnails(observations: list[Observation]) -> None:
        for obs in observations:
            if obs.crop is not None and obs.thumbnail is None:
                obs.thumbnail = encode_thumbnail(obs.crop)
