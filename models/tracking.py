"""Within-camera tracking of detected people (Ultralytics' ByteTrack or BoT-SORT, one state per camera).

The association settings differ from Ultralytics' defaults in one respect, measured on PETS 2009 S2.L1 at 5
analysed frames/s (``benchmarks/recall.py``): score fusion (``fuse_score``) multiplies the IoU of a small, distant
person between two analysed frames by a low detection score, so their tracks never start and 14% of the
person-frames were lost; without it and with matching down to IoU 0.1 (``match_thresh`` 0.9) the tracked boxes cover
95% of the reference and the 30 s give 22 tracks instead of 37 fragments.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from common.types import Detection
from models.detection import PersonDetections, PersonDetector

#: Overrides of Ultralytics' tracker files (see the module docstring for why).
ASSOCIATION = {"fuse_score": False, "match_thresh": 0.9}
TRACKERS = {"bytetrack": "bytetrack.yaml", "botsort": "botsort.yaml", "botsort-reid": "botsort.yaml"}
#: ``botsort-reid``: BoT-SORT associating by the re-id embedding of every box as well (Aharon et al., "BoT-SORT:
#: Robust Associations Multi-Pedestrian Tracking", 2022, Sec. 3.4), with reid-app's own encoder; no camera-motion
#: compensation (surveillance cameras are fixed, and it costs more than the detector on the CPU).
#: Appearance counts for pairs whose boxes overlap at all (``proximity_thresh`` IoU 0.1 instead of 0.5: at 5 frames/s
#: a walking person's boxes in two analysed frames overlap little) and whose embeddings' cosine is 0.75 or more
#: (PETS S2L1 at 5 frames/s: IDF1 74.5-75.0 for proximity 0.1 and cosine 0.7-0.8, 69.2 with Ultralytics' 0.5).
#: ``model`` is not "auto", so that boxes are cut from the frame for :class:`BoxEmbedder`.
REID_ASSOCIATION = {
    "gmc_method": "none",
    "with_reid": False,
    "model": "reid-app",
    "proximity_thresh": 0.1,
    "appearance_thresh": 0.75,
}


class BoxEmbedder:
    """Ultralytics BoT-SORT's ``encoder``: the re-id embeddings of a frame's boxes, with reid-app's encoder.

    Args:
        encoder: a ``models.encoders.ReIDEncoder`` (its default part boxes: keypoints come after tracking).
    """

    def __init__(self, encoder):
        self.encoder = encoder

    def __call__(self, image: np.ndarray, boxes: np.ndarray) -> list[np.ndarray]:
        """``image``: ``uint8 [H, W, 3]`` BGR; ``boxes``: ``float [N, 5]`` centre x, centre y, width, height (pixels)
        and the detection index. Returns N ``float32 [D]`` L2-normalised embeddings."""
        h, w = image.shape[:2]
        crops = []
        for cx, cy, bw, bh in np.asarray(boxes, float)[:, :4]:
            x1, y1 = int(np.clip(cx - bw / 2, 0, w - 2)), int(np.clip(cy - bh / 2, 0, h - 2))
            x2, y2 = int(np.clip(np.ceil(cx + bw / 2), x1 + 2, w)), int(np.clip(np.ceil(cy + bh / 2), y1 + 2, h))
            crops.append(image[y1:y2, x1:x2])
        return list(self.encoder.encode(crops)) if crops else []


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
        """One :class:`common.types.Detection` per person (the sampler and storage work per person)."""
        kps = self.keypoints
        return [
            Detection(
                track_id=int(self.track_ids[i]),
                box=self.xyxy[i],
                score=float(self.conf[i]),
                keypoints=None if kps is None else kps[i],
            )
            for i in range(len(self))
        ]


def _tracker_config(name: str):
    from ultralytics.utils import YAML, IterableSimpleNamespace
    from ultralytics.utils.checks import check_yaml

    if name not in TRACKERS:
        raise ValueError(f"unknown tracker {name!r}; choose one of {sorted(TRACKERS)}")
    config = dict(YAML.load(check_yaml(TRACKERS[name])))
    config.update(ASSOCIATION)
    if name == "botsort-reid":
        config.update(REID_ASSOCIATION)
    return IterableSimpleNamespace(**config)


@functools.cache
def _appearance_botsort_class():
    """Ultralytics' BoT-SORT embedding only the high-score boxes: the low-score ones of ByteTrack's second
    association are matched by IoU alone (Zhang et al., "ByteTrack", ECCV 2022, Sec. 3), so their embeddings would
    never be read. Made on first use (Ultralytics is imported only when a tracker is built)."""
    from ultralytics.trackers.bot_sort import BOTSORT

    class AppearanceBOTSORT(BOTSORT):
        def init_track(self, results, img=None):
            if img is not None and len(results) and float(np.max(results.conf)) < self.args.track_high_thresh:
                img = None
            return super().init_track(results, img)

    return AppearanceBOTSORT


def _appearance_botsort(config, embedder: BoxEmbedder):
    """A :func:`_appearance_botsort_class` tracker with ``embedder`` as its re-id encoder."""
    tracker = _appearance_botsort_class()(args=config)
    tracker.args.with_reid = True
    tracker.encoder = embedder
    return tracker


class CameraTracker:
    """One camera's tracker state: feed it that camera's detections frame by frame.

    Args:
        tracker: ``bytetrack``, ``botsort``, or ``botsort-reid`` (BoT-SORT that also associates by the re-id
            embedding of every confident box).
        encoder: the ``models.encoders.ReIDEncoder`` of ``botsort-reid``.

    Raises:
        ValueError: an unknown tracker name, or ``botsort-reid`` without an encoder.
    """

    def __init__(self, tracker: str = "bytetrack", encoder=None):
        from ultralytics.trackers.track import TRACKER_MAP

        config = _tracker_config(tracker)
        self.name = tracker
        if tracker == "botsort-reid":
            if encoder is None:
                raise ValueError("tracker 'botsort-reid' needs the re-id encoder")
            self._tracker = _appearance_botsort(config, BoxEmbedder(encoder))
        else:
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
            return TrackedPeople(
                np.zeros(0, np.int64),
                np.zeros((0, 4), np.float32),
                np.zeros(0, np.float32),
                None if detections.keypoints is None else np.zeros((0, 17, 3), np.float32),
            )
        index = out[:, -1].astype(np.int64)
        picked = detections[index]
        return TrackedPeople(out[:, 4].astype(np.int64), picked.xyxy, picked.conf, picked.keypoints)


class PersonTracker:
    """A detector and one camera's tracker together: detects and tracks the people in one camera's frames.

    Args:
        weights: YOLO weights (see ``models.detection.load_yolo``).
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        tracker: ``bytetrack``, ``botsort`` or ``botsort-reid`` (needs ``encoder``).
        confidence: minimum detection score in ``[0, 1]``.
        image_size: inference size in pixels (longest side).
        model: an already loaded YOLO model to use instead of loading ``weights``.
        detector: an existing :class:`PersonDetector` to share (e.g. a batching one) instead of building one.
        encoder: the re-id encoder ``botsort-reid`` associates with (``models.encoders.ReIDEncoder``).

    Raises:
        WeightsError: see ``models.detection.load_yolo``.
        ValueError: an unknown tracker name.
    """

    def __init__(
        self,
        weights: str | Path = "",
        device: str = "cpu",
        tracker: str = "bytetrack",
        confidence: float = 0.1,
        image_size: int = 640,
        model=None,
        detector=None,
        encoder=None,
    ):
        self.camera_tracker = CameraTracker(tracker, encoder)
        self.detector = (
            detector if detector is not None else PersonDetector(weights, device, confidence, image_size, model)
        )
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
        """Like :meth:`track`, one :class:`common.types.Detection` per tracked person."""
        return self.track(image).to_detections()

    def repeat(self, image: Optional[np.ndarray] = None) -> list[Detection]:
        """Track a frame in which nothing moved without detecting it: the previous detections are given to the
        tracker again, so the people standing still keep their tracks and sightings (motion gating)."""
        return self.camera_tracker.update(self._last, image).to_detections()
