"""Geometry of axis-aligned boxes: their overlap (the detector, tracker, tiling and tracking metrics) and the pixels a
box covers in a frame (every crop: ingest, evidence, site adaptation)."""

from __future__ import annotations

import numpy as np


def box_overlaps(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairwise overlap of the boxes of ``a`` (``float [N, 4]``, x1 y1 x2 y2 pixels) and ``b`` (``[M, 4]``).

    Returns:
        ``(iou, inside)``, both ``float64 [N, M]``: intersection over union, and intersection over the smaller of
        the two boxes' areas (1 when one box lies inside the other; SAHI's "IOS"). 0 where a box has no area.
    """
    a, b = np.asarray(a, float).reshape(-1, 4), np.asarray(b, float).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    smaller = np.minimum(area_a[:, None], area_b[None, :])
    iou = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
    inside = np.where(smaller > 0, inter / np.maximum(smaller, 1e-12), 0.0)
    return iou, inside


def pixel_bounds(box, width: int, height: int) -> tuple[int, int, int, int]:
    """The whole pixels ``(x1, y1, x2, y2)`` a box ``(x1, y1, x2, y2)`` (float pixels) covers in a ``width`` x
    ``height`` frame: outward to whole pixels, clipped to the frame (empty when ``x2 <= x1`` or ``y2 <= y1``)."""
    x1, y1 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x2, y2 = min(int(width), int(np.ceil(box[2]))), min(int(height), int(np.ceil(box[3])))
    return x1, y1, x2, y2
