"""Bystander redaction of exported evidence: every person but the exported one is blurred beyond recognition.

An export shows the person of interest; the people around them are bystanders whose privacy the export must not
give away. Their bodies are located by their stored sightings (the boxes of every other track of the video),
linearly interpolated between analysed frames and held half a second past a track's first and last sighting, each
padded by ``pad`` of its size, and pixelated then blurred (a mosaic of ``cells`` blocks across the box). The
exported person's own box is never blurred, even where a bystander overlaps it. The source footage is only read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence

import cv2
import numpy as np

#: How an export's bystanders are redacted, as recorded in the manifest.
METHOD = (
    "every other tracked person of the video: stored boxes, linearly interpolated between analysed frames and "
    "held 0.5 s past each track's ends, padded by 15% of their size, pixelated to 6 blocks across and "
    "blurred; the exported person's own box is left sharp"
)


@dataclass
class BystanderBoxes:
    """Where the other people of one video are in any frame.

    Args:
        tracks: ``{track id: [(frame index, (x1, y1, x2, y2) pixels), ...]}`` of every track but the exported
            one's, in any order.
        fps: the video's frame rate (frames/s).
        max_gap_s: sightings further apart than this (seconds) are not interpolated between (the person left).
        hold_s: a box is also shown this long before a track's first and after its last sighting.
    """

    tracks: dict[int, list[tuple[int, tuple[float, float, float, float]]]]
    fps: float
    max_gap_s: float = 2.0
    hold_s: float = 0.5
    _frames: dict[int, np.ndarray] = field(default_factory=dict, init=False)
    _boxes: dict[int, np.ndarray] = field(default_factory=dict, init=False)

    def __post_init__(self):
        self._hold = max(1, int(round(self.hold_s * self.fps)))  # frames
        self._gap = max(1, int(round(self.max_gap_s * self.fps)))
        for track, rows in self.tracks.items():
            rows = sorted(rows)
            self._frames[track] = np.array([f for f, _ in rows], np.int64)
            self._boxes[track] = np.array([b for _, b in rows], np.float64).reshape(-1, 4)

    def at(self, frame_index: int) -> list[np.ndarray]:
        """The bystanders' boxes (``float64 [4]`` xyxy, pixels) in frame ``frame_index``."""
        hold, gap = self._hold, self._gap
        out = []
        for track, frames in self._frames.items():
            if not len(frames) or frame_index < frames[0] - hold or frame_index > frames[-1] + hold:
                continue
            i = int(np.searchsorted(frames, frame_index, side="right")) - 1
            boxes = self._boxes[track]
            if i < 0:
                out.append(boxes[0])
            elif i == len(frames) - 1 or frames[i] == frame_index:
                out.append(boxes[i])
            elif frames[i + 1] - frames[i] <= gap:
                w = (frame_index - frames[i]) / (frames[i + 1] - frames[i])
                out.append((1 - w) * boxes[i] + w * boxes[i + 1])
            else:  # a long gap: only near either end
                if frame_index - frames[i] <= hold:
                    out.append(boxes[i])
                elif frames[i + 1] - frame_index <= hold:
                    out.append(boxes[i + 1])
        return out


def blur_bystanders(
    image: np.ndarray,
    boxes: Iterable[np.ndarray],
    keep: Optional[Sequence[float]] = None,
    pad: float = 0.15,
    cells: int = 6,
) -> int:
    """Pixelate and blur ``boxes`` in ``image`` (``uint8 [H, W, 3]``, in place), except inside ``keep`` (the
    exported person's box, pixels).

    Args:
        pad: each box grows by this fraction of its width and height on every side.
        cells: mosaic blocks across a box's width (a face or a logo cannot be read from 6 blocks).

    Returns:
        How many boxes were blurred (those inside the image).
    """
    h, w = image.shape[:2]
    blurred = 0
    for box in boxes:
        x1, y1, x2, y2 = (float(v) for v in box)
        dx, dy = pad * (x2 - x1), pad * (y2 - y1)
        ix1, iy1 = max(0, int(x1 - dx)), max(0, int(y1 - dy))
        ix2, iy2 = min(w, int(np.ceil(x2 + dx))), min(h, int(np.ceil(y2 + dy)))
        if ix2 - ix1 < 2 or iy2 - iy1 < 2:
            continue
        region = image[iy1:iy2, ix1:ix2]
        across = max(1, cells)
        down = max(1, int(round(across * region.shape[0] / max(region.shape[1], 1))))
        mosaic = cv2.resize(
            cv2.resize(region, (across, down), interpolation=cv2.INTER_AREA),
            (region.shape[1], region.shape[0]),
            interpolation=cv2.INTER_NEAREST,
        )
        kernel = max(3, (min(region.shape[:2]) // 4) | 1)
        mosaic = cv2.GaussianBlur(mosaic, (kernel, kernel), 0)
        if keep is not None:  # the exported person stays sharp where a bystander overlaps them
            kx1, ky1 = max(ix1, int(keep[0])), max(iy1, int(keep[1]))
            kx2, ky2 = min(ix2, int(np.ceil(keep[2]))), min(iy2, int(np.ceil(keep[3])))
            if kx2 > kx1 and ky2 > ky1:
                mosaic[ky1 - iy1 : ky2 - iy1, kx1 - ix1 : kx2 - ix1] = region[
                    ky1 - iy1 : ky2 - iy1, kx1 - ix1 : kx2 - ix1
                ]
        image[iy1:iy2, ix1:ix2] = mosaic
        blurred += 1
    return blurred
