"""Within-camera tracking of detected people (Ultralytics' ByteTrack or BoT-SORT, one state per camera).

The association settings differ from Ultralytics' defaults in one respect, measured on PETS 2009 S2.L1 at 5
analysed frames/s (``benchmarks/recall.py``): score fusion (``fuse_score``) multiplies the IoU of a small, distant
person between two analysed frames by a low detection score, so their tracks never start and 14% of the
person-frames were lost; without it and with matching down to IoU 0.1 (``match_thresh`` 0.9) the tracked boxes cover
95% of the reference and the 30 s give 22 tracks instead of 37 fragments.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from models.detection import PersonDetections, PersonDetector
from reid_app.types import Detection

#: Overrides of Ultralytics' tracker files (see the module docstring for why).
ASSOCIATION = {"fuse_score": False, "match_thresh": 0.9}
TRACKERS = {"bytetrack": "bytetrack.yaml", "botsort": "botsort.yaml"}


@dataclass
class TrackedPeople:
    """The tracked people in one frame, column by column.

    Attributes:
        track_ids: ``int64 [N]`` track ids, unique within one camera's video.
        xyxy: ``float32 [N, 4]`` the detections' own boxes (frame pixels), not the Kalman estimate.
        conf: ``float32 [N]`` detector confidences.
        keypoints: ``float32 [N, 17, 3]`` COCO-17 keypoints in frame pixels, or None.
    """

    track_ids: np.ndarray
    xyxy: np.ndarray
    conf: np.ndarray
    keypoints: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(self.track_ids)

    def to_detections(self) -> list[Detection]:
        """One :class:`reid_app.types.Detection` per person (the sampler and storage work per person)."""
        kps = self.keypoints
        return [Detection(track_id=int(self.track_ids[i]), box=self.xyxy[i], score=float(self.conf[i]),
                          keypoints=None if kps is None else kps[i]) for i in range(len(self))]


def _tracker_config(name: str):
    from ultralytics.utils import YAML, IterableSimpleNamespace
    from ultralytics.utils.checks import check_yaml

    if name not in TRACKERS:
        raise ValueError(f"unknown tracker {name!r}; choose one of {sorted(TRACKERS)}")
    config = dict(YAML.load(check_yaml(TRACKERS[name])))
    config.update(ASSOCIATION)
    return IterableSimpleNamespace(**config)


class CameraTracker:
    """One camera's tracker state: feed it that camera's detections frame by frame.

    Args:
        tracker: ``bytetrack`` or ``botsort``.

    Raises:
        ValueError: an unknown tracker name.
    """

    def __init__(self, tracker: str = "bytetrack"):
        from ultralytics.trackers.track import TRACKER_MAP

        config = _tracker_config(tracker)
        self.name = tracker
        self._tracker = TRACKER_MAP[config.tracker_type](args=config)

    @property
    def has_tracks(self) -> bool:
        """True while a track is followed or was lost recently enough to be found again."""
        return bool(self._tracker.tracked_stracks or self._tracker.lost_stracks)

    def update(self, detections: PersonDetections, image: Optional[np.ndarray] = None) -> TrackedPeople:
        """Associate one frame's detections with this camera's tracks.

        Args:
            detections: the frame's detections.
            image: ``uint8 [H, W, 3]`` BGR frame (BoT-SORT's camera-motion compensation uses it).

        Returns:
            The confirmed tracks seen in this frame (boxes not yet confirmed by the tracker are dropped).
        """
        out = self._tracker.update(detections, image)
        if len(out) == 0:
            return TrackedPeople(np.zeros(0, np.int64), np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                                 None if detections.keypoints is None else np.zeros((0, 17, 3), np.float32))
        index = out[:, -1].astype(np.int64)
        picked = detections[index]
        return TrackedPeople(out[:, 4].astype(np.int64), picked.xyxy, picked.conf, picked.keypoints)


class PersonTracker:
    """A detector and one camera's tracker together: detects and tracks the people in one camera's frames.

    Args:
        weights: YOLO weights (see ``models.detection.load_yolo``).
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        tracker: ``bytetrack`` or ``botsort``.
        confidence: minimum detection score in ``[0, 1]``.
        image_size: inference size in pixels (longest side).
        model: an already loaded YOLO model to use instead of loading ``weights``.
        detector: an existing :class:`PersonDetector` to share (e.g. a batching one) instead of building one.

    Raises:
        WeightsError: see ``models.detection.load_yolo``.
        ValueError: an unknown tracker name.
    """

    def __init__(self, weights: str | Path = "", device: str = "cpu", tracker: str = "bytetrack",
                 confidence: float = 0.1, image_size: int = 640, model=None, detector=None):
        self.camera_tracker = CameraTracker(tracker)
        self.detector = detector if detector is not None else PersonDetector(
            weights, device, confidence, image_size, model)
        self._last = PersonDetections.empty()

    @property
    def gives_keypoints(self) -> bool:
        """True when the detector is a pose model, so its detections carry COCO-17 keypoints."""
        return self.detector.gives_keypoints

    def track(self, image: np.ndarray) -> TrackedPeople:
        """Detect and track the people in the next frame of this camera (columnar).

        Args:
            image: ``uint8 [H, W, 3]`` BGR frame.
        """
        self._last = self.detector.detect([image])[0]
        return self.camera_tracker.update(self._last, image)

    def update(self, image: np.ndarray) -> list[Detection]:
        """Like :meth:`track`, one :class:`reid_app.types.Detection` per tracked person."""
        return self.track(image).to_detections()

    def repeat(self, image: Optional[np.ndarray] = None) -> list[Detection]:
        """Track a frame in which nothing moved without detecting it: the previous detections are given to the
        tracker again, so the people standing still keep their tracks and sightings (motion gating)."""
        return self.camera_tracker.update(self._last, image).to_detections()
