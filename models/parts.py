"""Body-part boxes for the pose-guided local branch, from COCO-17 keypoints with a fixed-ratio fallback.

Parts, top to bottom (JLML, Li et al. IJCAI 2017, Sec. 3.1, m = 4): head+shoulder, upper body, upper leg, lower leg.
Following Liu et al. (joint-loss pose-guided re-id), each part's vertical extent comes from the landmarks that bound
it; when those landmarks are missing or weak (occlusion), a pre-defined region of the person box stands in.
For the ablations, 2 parts (upper body, lower body) and 6 parts (head, chest, abdomen, upper leg, lower leg, feet)
are defined the same way.

Horizontal flips: :func:`flip_keypoints` mirrors x and swaps every left/right COCO pair, and :func:`flip_boxes`
mirrors boxes; part boxes computed from flipped keypoints equal the flipped part boxes, so an image, its keypoints
and its part boxes stay consistent under the flip augmentation.
"""

from __future__ import annotations

import numpy as np

# COCO-17 indices
_NOSE, _EYES, _EARS = [0], [1, 2], [3, 4]
_SHOULDERS, _ELBOWS, _WRISTS = [5, 6], [7, 8], [9, 10]
_HIPS, _KNEES, _ANKLES = [11, 12], [13, 14], [15, 16]
_HEAD = _NOSE + _EYES + _EARS

#: COCO-17 index of each keypoint's mirror image (left <-> right).
COCO_FLIP_INDEX = np.array([0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15])

#: Supported numbers of pose-guided parts.
PART_COUNTS = (2, 4, 6)

#: What each pose-guided part is called where a person reads it (match explanations, reports), top to bottom.
PART_NAMES = {
    2: ("upper body", "lower body"),
    4: ("head", "upper body", "lower body", "legs"),
    6: ("head", "chest", "abdomen", "upper legs", "lower legs", "feet"),
}


def parse_descriptor_layout(text: str) -> list[dict]:
    """A descriptor layout stored as JSON (``JointLossConfig.descriptor_layout``) -> ``[{"name", "start", "stop"}]``.

    Raises:
        ValueError: not JSON, or an entry without a name and integer start/stop.
    """
    import json

    try:
        return [{"name": str(p["name"]), "start": int(p["start"]), "stop": int(p["stop"])} for p in json.loads(text)]
    except (TypeError, KeyError) as exc:
        raise ValueError(f"malformed descriptor layout ({type(exc).__name__}: {exc})") from None


def part_names(num_parts: int, part_mode: str = "pose") -> tuple[str, ...]:
    """Readable names of ``num_parts`` parts: :data:`PART_NAMES` for pose-guided parts, ``stripe 1..P`` (top to
    bottom) for fixed stripes or other counts."""
    if part_mode == "pose" and num_parts in PART_NAMES:
        return PART_NAMES[num_parts]
    return tuple(f"stripe {k + 1}" for k in range(num_parts))


#: Fallback part regions as fractions of the crop height ``(top, bottom)``, full width; they overlap slightly.
FALLBACK_STRIPES = np.array([[0.0, 0.28], [0.20, 0.58], [0.50, 0.78], [0.72, 1.0]], dtype=np.float32)
_FALLBACKS = {
    2: np.array([[0.0, 0.55], [0.45, 1.0]], dtype=np.float32),
    4: FALLBACK_STRIPES,
    6: np.array([[0.0, 0.18], [0.14, 0.36], [0.32, 0.55], [0.50, 0.75], [0.70, 0.92], [0.86, 1.0]], dtype=np.float32),
}

# Each part: (top level, bottom level, keypoints bounding its width). A level is the mean y of visible landmarks;
# "top"/"bottom" are the crop edges; "ankles|bottom" means the ankles when visible, else the crop's bottom edge.
_PART_SPECS = {
    2: (
        ("top", "hips", _HEAD + _SHOULDERS + _ELBOWS + _WRISTS + _HIPS),
        ("hips", "ankles|bottom", _HIPS + _KNEES + _ANKLES),
    ),
    4: (
        ("top", "shoulders", _HEAD + _SHOULDERS),
        ("shoulders", "hips", _SHOULDERS + _ELBOWS + _WRISTS + _HIPS),
        ("hips", "knees", _HIPS + _KNEES),
        ("knees", "ankles|bottom", _KNEES + _ANKLES),
    ),
    6: (
        ("top", "shoulders", _HEAD + _SHOULDERS),
        ("shoulders", "mid_torso", _SHOULDERS + _ELBOWS),
        ("mid_torso", "hips", _ELBOWS + _WRISTS + _HIPS),
        ("hips", "knees", _HIPS + _KNEES),
        ("knees", "ankles", _KNEES + _ANKLES),
        ("ankles", "bottom", _ANKLES),
    ),
}


def fallback_stripes(num_parts: int) -> np.ndarray:
    """``float32 [P, 2]`` (top, bottom) height fractions of the fixed parts: the defaults above for 2/4/6 parts,
    equal horizontal stripes (the "stripes" ablation, as in PCB) for any other count."""
    if num_parts in _FALLBACKS:
        return _FALLBACKS[num_parts]
    edges = np.arange(num_parts + 1, dtype=np.float32) / num_parts
    return np.stack([edges[:-1], edges[1:]], axis=1)


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


def flip_keypoints(keypoints: np.ndarray | None, width: float) -> np.ndarray | None:
    """Mirror COCO-17 keypoints horizontally: ``x -> width - x`` and left/right pairs swapped.

    Args:
        keypoints: ``float32 [17, 3]`` ``(x, y, confidence)`` in pixels of an image ``width`` pixels wide, or None.

    Returns:
        A new ``float32 [17, 3]`` array (None for None).
    """
    if keypoints is None:
        return None
    flipped = np.asarray(keypoints, dtype=np.float32)[COCO_FLIP_INDEX].copy()
    flipped[:, 0] = width - flipped[:, 0]
    return flipped


def flip_boxes(boxes: np.ndarray, width: float) -> np.ndarray:
    """Mirror boxes ``float32 [..., 4]`` ``(x1, y1, x2, y2)`` horizontally in an image ``width`` pixels wide."""
    flipped = np.array(boxes, dtype=np.float32, copy=True)
    flipped[..., 0] = width - boxes[..., 2]
    flipped[..., 2] = width - boxes[..., 0]
    return flipped


def part_boxes_from_keypoints(
    keypoints: np.ndarray | None, height: float, width: float, min_confidence: float = 0.3, num_parts: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Part boxes of one person crop.

    Args:
        keypoints: ``float32 [17, 3]`` COCO-17 ``(x, y, confidence)`` in *crop* pixels, or None.
        height, width: crop size in pixels.
        min_confidence: keypoints below this confidence count as missing.
        num_parts: 2, 4 (default) or 6 (see the module docstring).

    Returns:
        ``(boxes, from_pose)``: ``float32 [P, 4]`` boxes ``(x1, y1, x2, y2)`` in crop pixels, clipped to the crop,
        each at least ``1/(2P)`` of the crop high; ``bool [P]``, True where a box came from keypoints and False where
        the fixed-ratio fallback (:func:`fallback_stripes`) was used.

    Raises:
        ValueError: ``num_parts`` not in :data:`PART_COUNTS`.
    """
    if num_parts not in _PART_SPECS:
        raise ValueError(f"pose-guided parts are defined for {PART_COUNTS} parts, not {num_parts}")
    boxes = stripe_boxes(height, width, fallback_stripes(num_parts))
    from_pose = np.zeros(num_parts, dtype=bool)
    if keypoints is None:
        return boxes, from_pose
    kp = np.asarray(keypoints, dtype=np.float32)
    visible = kp[:, 2] >= min_confidence

    def level(indices: list[int]) -> float | None:
        idx = [i for i in indices if visible[i]]
        return float(kp[idx, 1].mean()) if idx else None

    head, shoulders, hips = level(_HEAD), level(_SHOULDERS), level(_HIPS)
    levels = {
        "top": 0.0,
        "bottom": float(height),
        "shoulders": shoulders,
        "hips": hips,
        "knees": level(_KNEES),
        "ankles": level(_ANKLES),
        "mid_torso": None if shoulders is None or hips is None else 0.5 * (shoulders + hips),
    }
    if shoulders is not None and head is None and shoulders <= 0.05 * height:
        levels["top"] = None  # shoulders at the crop's top edge and no head: the head is cut off
    margin = 0.04 * height
    min_h = height / (2 * num_parts)
    pad = 0.15 * width
    for p, (top_name, bottom_name, x_keypoints) in enumerate(_PART_SPECS[num_parts]):
        top = levels[top_name]
        bottom = next((levels[n] for n in bottom_name.split("|") if levels[n] is not None), None)
        if top is None or bottom is None or bottom <= top:
            continue
        top, bottom = max(0.0, top - margin), min(float(height), bottom + margin)
        if bottom - top < min_h:
            centre = 0.5 * (top + bottom)
            top, bottom = max(0.0, centre - min_h / 2), min(float(height), centre + min_h / 2)
        if bottom - top < min_h * 0.99:
            continue
        idx = [i for i in x_keypoints if visible[i]]
        x1 = max(0.0, float(kp[idx, 0].min()) - pad) if idx else 0.0
        x2 = min(float(width), float(kp[idx, 0].max()) + pad) if idx else float(width)
        if x2 - x1 < 0.3 * width:
            x1, x2 = 0.0, float(width)
        boxes[p] = (x1, top, x2, bottom)
        from_pose[p] = True
    return boxes, from_pose
