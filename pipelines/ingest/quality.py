"""Quality gate for re-id crops: which tracked detections are worth encoding, and how good they are.

A crop is rejected when it is too small (under 24 px tall: a distant person is still encoded, upscaled, so that
every real track can be searched), truncated at the frame border (the person is cut, so the body-part layout is
wrong), or when too few COCO keypoints are visible. People under ``pose_min_height`` get no pose estimate (a
skeleton from a few dozen pixels is noise) and are judged without one. Accepted crops get a quality score in
``(0, 1]``: detection score x keypoint visibility x a size factor (height / 128 px, 1 from 128 px up), so a small
crop counts for little in its track's descriptor. The score ranks crops for per-track sampling and weights each
embedding in the track descriptor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.boxes import box_overlaps
from common.types import Detection


@dataclass(frozen=True)
class QualityConfig:
    """Thresholds of the quality gate.

    Attributes:
        min_height: minimum box height in pixels.
        min_width: minimum box width in pixels.
        pose_min_height: boxes shorter than this (pixels) get no pose estimate and no keypoint gate.
        full_size_height: box height (pixels) from which the size factor is 1.
        border_margin: a box edge closer than this many pixels to the frame border counts as truncated.
        min_visible_fraction: minimum fraction of the 17 keypoints with confidence >= ``keypoint_confidence``
            (ignored when the detection has no keypoints).
        keypoint_confidence: confidence from which a keypoint counts as visible.
    """

    min_height: float = 24.0
    min_width: float = 8.0
    pose_min_height: float = 48.0
    full_size_height: float = 128.0
    border_margin: float = 2.0
    min_visible_fraction: float = 0.35
    keypoint_confidence: float = 0.3


@dataclass(frozen=True)
class StaticTrackConfig:
    """When a track counts as a static false positive (an empty chair): over at least ``min_duration_s`` seconds
    its box centre moved less than ``max_motion`` box heights and its width and height changed by less than
    ``max_resize`` of their mean. Measured on the lab cameras: the chair moves 0.017 heights and resizes 4.5% over
    26 s; walking people move 0.17 to 1.4 heights. ``min_duration_s = 0`` never marks a track.

    A motionless track whose mean detection score is under ``low_score`` counts as static after
    ``low_score_min_duration_s`` already: on PETS S2L1 a sign was tracked, motionless, for 8.8 s at a mean score
    of 0.15. The people of the PETS and lab clips whose tracks scored under 0.35 (bent over, half hidden, dark)
    all moved more than 0.05 of their height."""

    min_duration_s: float = 10.0
    max_motion: float = 0.05
    max_resize: float = 0.10
    low_score: float = 0.35
    low_score_min_duration_s: float = 5.0


@dataclass(frozen=True)
class SkeletonCheckConfig:
    """When a track is no person (a shadow, a reflection, a poster): at least ``min_attempts`` of its sightings
    were due a pose estimate (tall enough and inside the frame, see :func:`wants_pose` and :func:`box_can_pass`)
    and the pose model found no skeleton in any of them. Such tracks are deleted when their video or segment is
    finished. A real person, even bent over or half hidden, gets a skeleton from at least one estimate (every
    track of the lab and PETS clips did); a chair can get one too, so the static rule stays. ``min_attempts`` 0:
    never (runs without pose estimation)."""

    min_attempts: int = 5


def box_can_pass(box: np.ndarray, frame_width: int, frame_height: int, config: QualityConfig = QualityConfig()) -> bool:
    """The part of the quality gate that needs no keypoints: False when a ``float32 [4]`` xyxy box (frame pixels)
    is too small or cut by the frame border, so its crop is never encoded whatever its pose (the pipeline then
    spends no pose estimate on it)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    if not _big_enough(box, config):
        return False
    m = config.border_margin
    return not (x1 <= m or y1 <= m or x2 >= frame_width - m or y2 >= frame_height - m)


def wants_pose(box: np.ndarray, config: QualityConfig = QualityConfig()) -> bool:
    """True when a box (``float32 [4]`` xyxy, pixels) is tall enough for a pose estimate worth its cost."""
    return float(box[3] - box[1]) >= config.pose_min_height


def crop_quality(
    detection: Detection, frame_width: int, frame_height: int, config: QualityConfig = QualityConfig()
) -> float:
    """Quality of a detection's crop: 0.0 when the gate rejects it, else a score in ``(0, 1]``.

    Args:
        detection: box in frame pixels, score, optional ``[17, 3]`` keypoints.
        frame_width, frame_height: frame size in pixels.
        config: thresholds.
    """
    if not box_can_pass(detection.box, frame_width, frame_height, config):
        return 0.0
    visibility = 1.0
    if detection.keypoints is not None:
        visibility = float(np.mean(detection.keypoints[:, 2] >= config.keypoint_confidence))
        if visibility < config.min_visible_fraction:
            return 0.0
    return max(1e-3, float(detection.score) * visibility * _size_factor(detection.box, config))


def _big_enough(box: np.ndarray, config: QualityConfig) -> bool:
    """A box (xyxy, pixels) at least ``min_height`` tall and ``min_width`` wide: a crop worth encoding at all."""
    return float(box[3] - box[1]) >= config.min_height and float(box[2] - box[0]) >= config.min_width


def _size_factor(box: np.ndarray, config: QualityConfig) -> float:
    """``height / full_size_height``, at most 1: how much a crop of this size counts."""
    return min(1.0, float(box[3] - box[1]) / config.full_size_height)


def fallback_quality(detection: Detection, config: QualityConfig = QualityConfig()) -> float:
    """The quality a crop the gate rejected takes when its track shows no better one in a second or more (so that
    every real track gets a descriptor, see ``pipelines.ingest.sampling``): 0 when the box is too small to encode at
    all,
    else ``1e-4 x score x size factor``, below any accepted crop's (at least ``1e-3``) so that it counts for
    almost nothing beside one."""
    if not _big_enough(detection.box, config):
        return 0.0
    return max(1e-6, 1e-4 * float(detection.score) * _size_factor(detection.box, config))


@dataclass(frozen=True)
class DuplicateConfig:
    """When two tracked boxes of one frame are one person boxed twice (a half-body box inside the full one, or two
    near-identical boxes the detector's NMS kept): their IoU is at least ``min_iou`` and at least ``min_inside`` of
    the smaller box lies inside the larger. Measured on PETS S2L1 at 5 frames/s: 13 pairs of boxes pass both, 11
    of them duplicates; two people walking side by side overlap less. ``min_iou > 1`` never suppresses."""

    min_iou: float = 0.6
    min_inside: float = 0.9


def suppress_duplicates(
    detections: list[Detection], age: dict[int, int], config: DuplicateConfig = DuplicateConfig()
) -> tuple[list[Detection], int]:
    """Drop the second box of a person boxed twice in one frame (see :class:`DuplicateConfig`): of the two, the box
    whose track has been seen in fewer frames goes (the established track keeps the person; ties: the lower
    detection score goes).

    Args:
        detections: one frame's tracked people (boxes ``float32 [4]`` xyxy, pixels).
        age: track id -> frames that track has been seen in so far (tracks not in it count as 0).
        config: thresholds.

    Returns:
        ``(the detections kept, in their order; how many were dropped)``.
    """
    if len(detections) < 2:
        return detections, 0
    iou, inside = box_overlaps(np.array([d.box for d in detections]), np.array([d.box for d in detections]))
    rank = sorted(range(len(detections)), key=lambda i: (-age.get(detections[i].track_id, 0), -detections[i].score))
    kept: list[int] = []
    for i in rank:
        if not any(iou[i, k] >= config.min_iou and inside[i, k] >= config.min_inside for k in kept):
            kept.append(i)
    chosen = set(kept)
    return [d for i, d in enumerate(detections) if i in chosen], len(detections) - len(kept)
