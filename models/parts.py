"""Body-part boxes for the pose-guided local branch, from COCO-17 keypoints with a fixed-ratio fallback.

Parts, top to bottom (JLML, Li et al. IJCAI 2017, Sec. 3.1, m = 4): head+shoulder, upper body, upper leg, lower leg.
Following Liu et al. (joint-loss pose-guided re-id), each part's vertical extent comes from the landmarks that bound
it; when those landmarks are missing or weak (occlusion), a pre-defined region of the person box stands in.
"""

from __future__ import annotations

import numpy as np

# COCO-17 indices
_NOSE, _EYES, _EARS = [0], [1, 2], [3, 4]
_SHOULDERS, _ELBOWS, _WRISTS = [5, 6], [7, 8], [9, 10]
_HIPS, _KNEES, _ANKLES = [11, 12], [13, 14], [15, 16]

#: Fallback part regions as fractions of the crop height ``(top, bottom)``, full width; they overlap slightly.
FALLBACK_STRIPES = np.array([[0.0, 0.28], [0.20, 0.58], [0.50, 0.78], [0.72, 1.0]], dtype=np.float32)

#: Keypoints whose horizontal spread bounds each part.
_PART_KEYPOINTS = (
    _NOSE + _EYES + _EARS + _SHOULDERS,
    _SHOULDERS + _ELBOWS + _WRISTS + _HIPS,
    _HIPS + _KNEES,
    _KNEES + _ANKLES,
)


def stripe_boxes(height: float, width: float, stripes: np.ndarray = FALLBACK_STRIPES) -> np.ndarray:
    """Fixed-ratio part boxes.

    Args:
        height, width: crop size in pixels.
        stripes: ``float32 [P, 2]`` (top, bottom) fractions of the height.

    Returns:
        ``float32 [P, 4]`` boxes ``(x1, y1, x2, y2)`` in crop pixels.
    """
    boxes = np.zeros((len(stripes), 4), dtype=np.float32)
    boxes[:, 1] = stripes[:, 0] * height
    boxes[:, 3] = stripes[:, 1] * height
    boxes[:, 2] = width
    return boxes


def part_boxes_from_keypoints(keypoints: np.ndarray | None, height: float, width: float,
                              min_confidence: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Part boxes of one person crop.

    Args:
        keypoints: ``float32 [17, 3]`` COCO-17 ``(x, y, confidence)`` in *crop* pixels, or None.
        height, width: crop size in pixels.
        min_confidence: keypoints below this confidence count as missing.

    Returns:
        ``(boxes, from_pose)``: ``float32 [4, 4]`` boxes ``(x1, y1, x2, y2)`` in crop pixels, clipped to the crop,
        each at least 1/8 of the crop high; ``bool [4]``, True where a box came from keypoints and False where the
        fixed-ratio fallback (:data:`FALLBACK_STRIPES`) was used.
    """
    boxes = stripe_boxes(height, width)
    from_pose = np.zeros(4, dtype=bool)
    if keypoints is None:
        return boxes, from_pose
    kp = np.asarray(keypoints, dtype=np.float32)
    visible = kp[:, 2] >= min_confidence

    def level(indices: list[int]) -> float | None:
        idx = [i for i in indices if visible[i]]
        return float(kp[idx, 1].mean()) if idx else None

    head = level(_NOSE + _EYES + _EARS)
    shoulders, hips, knees, ankles = level(_SHOULDERS), level(_HIPS), level(_KNEES), level(_ANKLES)
    margin = 0.04 * height
    spans = [
        (0.0, shoulders + margin) if shoulders is not None and (head is not None or shoulders > 0.05 * height)
        else None,
        (shoulders - margin, hips + margin) if shoulders is not None and hips is not None else None,
        (hips - margin, knees + margin) if hips is not None and knees is not None else None,
        (knees - margin, height if ankles is None else max(ankles + margin, knees + margin))
        if knees is not None else None,
    ]
    min_h = height / 8.0
    pad = 0.15 * width
    for p, span in enumerate(spans):
        if span is None:
            continue
        top, bottom = max(0.0, span[0]), min(float(height), span[1])
        if bottom - top < min_h:
            centre = 0.5 * (top + bottom)
            top, bottom = max(0.0, centre - min_h / 2), min(float(height), centre + min_h / 2)
        if bottom - top < min_h * 0.99:
            continue
        idx = [i for i in _PART_KEYPOINTS[p] if visible[i]]
        x1 = max(0.0, float(kp[idx, 0].min()) - pad) if idx else 0.0
        x2 = min(float(width), float(kp[idx, 0].max()) + pad) if idx else float(width)
        if x2 - x1 < 0.3 * width:
            x1, x2 = 0.0, float(width)
        boxes[p] = (x1, top, x2, bottom)
        from_pose[p] = True
    return boxes, from_pose
