"""Person crops cut again from a site's source footage (videos or live recordings) at the stored boxes, at full
resolution, for site adaptation and re-encoding (issue 31). The stored thumbnails are small JPEGs: a model trained
or encoding from them would see other pixels than ingest's encoder saw."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional, Sequence

import numpy as np

from common.boxes import pixel_bounds
from models.parts import part_boxes_from_keypoints
from pipelines.ingest.video import FrameReader
from storage.model_versions import PendingSighting


@dataclass(frozen=True)
class SiteCrop:
    """One sighting cut from its frame.

    Attributes:
        sighting: what was cut.
        image: ``uint8 [h, w, 3]`` BGR, the stored box clipped to the frame.
        keypoints: ``float32 [17, 3]`` COCO-17 keypoints in *crop* pixels, or None.
    """

    sighting: PendingSighting
    image: np.ndarray
    keypoints: Optional[np.ndarray]

    def part_boxes(self, num_parts: int) -> np.ndarray:
        """``float32 [num_parts, 4]`` part boxes in crop pixels, as ingest places them (``models.parts``)."""
        boxes, _ = part_boxes_from_keypoints(
            self.keypoints, self.image.shape[0], self.image.shape[1], num_parts=num_parts
        )
        return boxes


def cut_crops(video_path: str, sightings: Sequence[PendingSighting]) -> Iterator[SiteCrop]:
    """The crops of ``sightings`` of one video, read in frame order (decoding through gaps instead of seeking);
    a sighting whose frame cannot be read or whose box lies outside the frame is skipped.

    Raises:
        common.errors.InputVideoError: the video file is missing or cannot be opened.
    """
    reader = FrameReader(video_path, max_skip=120)
    try:
        for s in sorted(sightings, key=lambda s: (s.frame_index, s.id)):
            frame = reader.read(s.frame_index)
            if frame is None:
                continue
            h, w = frame.shape[:2]
            x1, y1, x2, y2 = pixel_bounds(s.box, w, h)
            if x2 - x1 < 2 or y2 - y1 < 2:
                continue
            keypoints = None
            if s.keypoints is not None:
                keypoints = s.keypoints.copy()
                keypoints[:, 0] -= x1
                keypoints[:, 1] -= y1
            yield SiteCrop(s, frame[y1:y2, x1:x2].copy(), keypoints)
    finally:
        reader.close()
