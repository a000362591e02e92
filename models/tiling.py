"""Sliced detection for small, distant people (the recall option ``reid-app ingest --tiles N``).

A detector sees a frame scaled to its input size, so a person 30 px tall in a 1920 px frame is 10 px at 640 and is
missed. Slicing Aided Hyper Inference (Akyon et al., "Slicing Aided Hyper Inference and Fine-tuning for Small
Object Detection", ICIP 2022, Sec. 3) also detects in overlapping tiles, each scaled up to the detector's input,
and merges the tiles' boxes with the full frame's. The tile grid and the de-duplication across tiles are SAHI's
own (``sahi.slicing.get_slice_bboxes``, ``sahi.postprocess.combine.nms``); what is kept is decided here:

- every full-frame detection is kept as it is (the detector's own NMS already chose among them, and two people
  walking side by side legitimately overlap);
- a tile's box touching an inner tile edge is dropped (a person cut by the tile is a part of someone whom the
  neighbouring tile, which overlaps it, or the full frame sees whole);
- the tiles' boxes are de-duplicated by intersection over the smaller box (SAHI's IOS metric), then added where no
  full-frame box already covers them (IOS below ``match_threshold``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from common.boxes import box_overlaps
from models.detection import PersonDetections

#: Pixels from an inner tile edge within which a tile's box counts as cut by it.
EDGE_PX = 2.0


def tile_boxes(height: int, width: int, tiles: int, overlap: float = 0.2) -> list[tuple[int, int, int, int]]:
    """The ``tiles x tiles`` overlapping tiles of a ``height x width`` frame as ``(x1, y1, x2, y2)`` pixels
    (SAHI's grid: tile size ``ceil(side / (tiles - (tiles - 1) * overlap))``, ``overlap`` of it shared).

    Raises:
        ValueError: ``tiles`` under 2 or ``overlap`` outside ``[0, 0.5]``.
    """
    from sahi.slicing import get_slice_bboxes

    if tiles < 2:
        raise ValueError(f"tiles must be at least 2, got {tiles}")
    if not 0 <= overlap <= 0.5:
        raise ValueError(f"overlap must be from 0 to 0.5, got {overlap}")
    tile_h = int(np.ceil(height / (tiles - (tiles - 1) * overlap)))
    tile_w = int(np.ceil(width / (tiles - (tiles - 1) * overlap)))
    boxes = get_slice_bboxes(
        height,
        width,
        slice_height=tile_h,
        slice_width=tile_w,
        auto_slice_resolution=False,
        overlap_height_ratio=overlap,
        overlap_width_ratio=overlap,
    )
    return [tuple(int(v) for v in box) for box in boxes]


def merge_tiles(
    full: PersonDetections,
    tiles: Sequence[tuple[tuple[int, int, int, int], PersonDetections]],
    height: int,
    width: int,
    match_threshold: float = 0.5,
) -> PersonDetections:
    """One frame's people from its full-frame detections and its tiles' (rules in the module docstring).

    Args:
        full: the full frame's detections (frame pixels).
        tiles: ``((x1, y1, x2, y2) of the tile in frame pixels, its detections in tile pixels)`` per tile.
        height, width: the frame's size in pixels.
        match_threshold: intersection over the smaller box at which two boxes are one person.

    Returns:
        ``full`` followed by the tiles' people it did not have, all in frame pixels.
    """
    from sahi.postprocess.combine import nms

    boxes, scores, keypoints = [], [], []
    for (tx1, ty1, tx2, ty2), found in tiles:
        if not len(found):
            continue
        xyxy = found.xyxy + np.array([tx1, ty1, tx1, ty1], np.float32)
        cut = np.zeros(len(found), bool)
        if tx1 > 0:
            cut |= xyxy[:, 0] <= tx1 + EDGE_PX
        if ty1 > 0:
            cut |= xyxy[:, 1] <= ty1 + EDGE_PX
        if tx2 < width:
            cut |= xyxy[:, 2] >= tx2 - EDGE_PX
        if ty2 < height:
            cut |= xyxy[:, 3] >= ty2 - EDGE_PX
        keep = ~cut
        boxes.append(xyxy[keep])
        scores.append(found.conf[keep])
        if found.keypoints is not None:
            kps = found.keypoints[keep].copy()
            kps[..., 0] += tx1
            kps[..., 1] += ty1
            keypoints.append(kps)
    if not boxes or not sum(len(s) for s in scores):
        return full
    xyxy, conf = np.concatenate(boxes), np.concatenate(scores)
    kept = nms(np.column_stack([xyxy, conf, np.zeros(len(conf))]).astype(np.float32), "IOS", match_threshold)
    kept = np.asarray(sorted(kept), np.int64)
    if len(full):
        new = box_overlaps(xyxy[kept], full.xyxy)[1].max(axis=1) < match_threshold
        kept = kept[new]
    if not len(kept):
        return full
    extra_kps = np.concatenate(keypoints)[kept] if keypoints and full.keypoints is not None else None
    return PersonDetections(
        np.concatenate([full.xyxy, xyxy[kept]]).astype(np.float32),
        np.concatenate([full.conf, conf[kept]]).astype(np.float32),
        None if extra_kps is None else np.concatenate([full.keypoints, extra_kps]).astype(np.float32),
    )


class TiledDetector:
    """A detector (``models.detection.PersonDetector`` or ``BatchingDetector``) that also detects in
    ``tiles x tiles`` overlapping tiles of every frame (see the module docstring). Each frame costs
    ``1 + tiles**2`` detector inputs in one call.

    Args:
        detector: the detector to run on frames and tiles.
        tiles: tiles per side, >= 2.
        overlap: fraction of a tile shared with its neighbour.

    Raises:
        ValueError: see :func:`tile_boxes`.
    """

    def __init__(self, detector, tiles: int = 2, overlap: float = 0.2):
        tile_boxes(64, 64, tiles, overlap)  # validates the arguments
        self.detector = detector
        self.tiles = tiles
        self.overlap = overlap

    @property
    def gives_keypoints(self) -> bool:
        """See ``models.detection.PersonDetector.gives_keypoints``."""
        return self.detector.gives_keypoints

    def detect(self, images: Sequence[np.ndarray]) -> list[PersonDetections]:
        """Same contract as ``models.detection.PersonDetector.detect`` (``uint8 [H, W, 3]`` BGR frames)."""
        inputs, layout = [], []
        for image in images:
            height, width = image.shape[:2]
            grid = tile_boxes(height, width, self.tiles, self.overlap)
            layout.append((len(inputs), grid, height, width))
            inputs.append(image)
            inputs += [np.ascontiguousarray(image[y1:y2, x1:x2]) for x1, y1, x2, y2 in grid]
        found = self.detector.detect(inputs)
        return [
            merge_tiles(found[start], list(zip(grid, found[start + 1 : start + 1 + len(grid)])), height, width)
            for start, grid, height, width in layout
        ]
