"""Why this match: part-level similarities of two people (head, upper body, lower body, legs).

The joint-loss network's descriptor is the concatenation of its branches' embeddings (global first, then one per
body part; ``JointLossConfig.descriptor_layout``, recorded per model in the database), the pose-guided part
branches of Liu et al. (joint-loss, pose-guided re-id: each part RoI-pooled from the keypoint-located region). So the
cosine of each part's slice of two descriptors says how alike that body part looks. A part counts only where the
COCO-17 keypoints say it is visible in both people: it is located from keypoints (``models.parts
.part_boxes_from_keypoints``, ``from_pose``) in at least :data:`MIN_VISIBLE_FRACTION` of the sightings looked at;
otherwise it is reported as not visible (its slice then describes a fixed stand-in region, not the body part).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import numpy as np

from models.parts import PART_NAMES, part_boxes_from_keypoints

#: A part is visible in a track when keypoints locate it in at least this fraction of the sightings looked at.
MIN_VISIBLE_FRACTION = 0.5


@dataclass(frozen=True)
class PartSimilarity:
    """One body part of a match.

    Attributes:
        name: the part (``head``, ``upper body``, ``lower body``, ``legs``; ``stripe k`` for stripe models).
        similarity: cosine of the part's descriptor slices in ``[-1, 1]``, or None when the part is not visible in
            the query or in the match.
    """

    name: str
    similarity: Optional[float]

    @property
    def visible(self) -> bool:
        """Whether the part was compared."""
        return self.similarity is not None


def part_slices(layout: Optional[Sequence[dict]]) -> list[tuple[str, int, int]]:
    """``(name, start, stop)`` of the body parts in a descriptor layout (the global branch left out); empty for
    None or a layout without parts."""
    return [(p["name"], int(p["start"]), int(p["stop"])) for p in (layout or []) if p["name"] != "global"]


def visible_parts(
    observations: Iterable[tuple[np.ndarray, Optional[np.ndarray]]], names: Sequence[str]
) -> dict[str, bool]:
    """Which parts keypoints locate in a person's sightings.

    Args:
        observations: ``(box float32 [4] (x1, y1, x2, y2), keypoints float32 [17, 3] or None)`` per sighting, in
            frame pixels.
        names: the model's part names, top to bottom.

    Returns:
        Part name -> visible in at least :data:`MIN_VISIBLE_FRACTION` of the sightings. Parts of a stripe model (no
        pose-guided names) and a person with no sightings count as visible: nothing says otherwise.
    """
    observations = list(observations)
    count = len(names)
    if not observations or count not in PART_NAMES or tuple(names) != PART_NAMES[count]:
        return {n: True for n in names}
    seen = np.zeros(count, int)
    for box, keypoints in observations:
        if keypoints is None:
            continue
        local = np.array(keypoints, np.float32, copy=True)
        local[:, 0] -= box[0]
        local[:, 1] -= box[1]
        seen += part_boxes_from_keypoints(local, float(box[3] - box[1]), float(box[2] - box[0]), num_parts=count)[1]
    return {n: bool(seen[k] >= MIN_VISIBLE_FRACTION * len(observations)) for k, n in enumerate(names)}


def explain_match(
    layout: Optional[Sequence[dict]],
    query: np.ndarray,
    match: np.ndarray,
    query_visible: Optional[dict[str, bool]] = None,
    match_visible: Optional[dict[str, bool]] = None,
) -> list[PartSimilarity]:
    """Part-by-part similarity of two descriptors.

    Args:
        layout: the model's descriptor layout (``[{"name", "start", "stop"}]``), or None.
        query, match: ``float32 [D]`` descriptors of the same model.
        query_visible, match_visible: from :func:`visible_parts`; None: every part counts as visible (an image
            query has no keypoints).

    Returns:
        One :class:`PartSimilarity` per body part, top to bottom (empty when the layout has no parts).
    """
    out = []
    for name, start, stop in part_slices(layout):
        if not ((query_visible or {}).get(name, True) and (match_visible or {}).get(name, True)):
            out.append(PartSimilarity(name, None))
            continue
        a, b = np.asarray(query[start:stop], np.float64), np.asarray(match[start:stop], np.float64)
        denominator = np.linalg.norm(a) * np.linalg.norm(b)
        out.append(PartSimilarity(name, float(a @ b / denominator) if denominator > 1e-12 else None))
    return out


def describe_parts(parts: Sequence[PartSimilarity]) -> str:
    """One line for people: ``"upper body 0.91, legs 0.62, head not visible"`` (compared parts first, in body
    order, then the ones not visible); empty when there are no parts."""
    compared = [f"{p.name} {p.similarity:.2f}" for p in parts if p.visible]
    hidden = [f"{p.name} not visible" for p in parts if not p.visible]
    return ", ".join(compared + hidden)
