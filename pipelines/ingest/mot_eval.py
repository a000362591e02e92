"""Tracking scored as the field scores it: CLEAR MOT (MOTA, ID switches, fragmentations, recall, precision), the
identity metrics (IDF1) and HOTA of tracked boxes against MOTChallenge ground truth, on the frames a tracker
analysed, through TrackEval (Luiten et al., "HOTA: A Higher Order Metric for Evaluating Multi-Object Tracking",
IJCV 2021; Bernardin & Stiefelhagen 2008 for CLEAR MOT; Ristani et al., ECCV 2016 workshops, for IDF1). Only the
per-frame IoU similarity is computed here; every metric is TrackEval's.

Boxes are ``(x1, y1, x2, y2)`` in pixels of the footage as analysed; ground truth in MOTChallenge's
``frame,id,left,top,width,height,conf,...`` form is read with a scale factor to those pixels.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from common.boxes import box_overlaps

#: A frame's boxes: ``[(object id, (x1, y1, x2, y2)), ...]`` in pixels.
FrameBoxes = list[tuple[int, tuple[float, float, float, float]]]


def read_mot_ground_truth(path: str | Path, scale: float = 1.0, first_frame: int = 1) -> dict[int, FrameBoxes]:
    """MOTChallenge ``gt.txt`` as ``{0-based frame index: boxes}``: rows with ``conf`` 0 (ignored regions) and,
    in the 9-column MOT16+ form, classes other than pedestrian (1) are left out.

    Args:
        scale: multiplies every coordinate (the ground truth's pixels to the analysed footage's).
        first_frame: the file's number of the footage's first frame (MOTChallenge counts from 1).

    Raises:
        ValueError: a row that is not numbers (the message names the line).
    """
    frames: dict[int, FrameBoxes] = defaultdict(list)
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            values = [float(v) for v in line.split(",")]
        except ValueError:
            raise ValueError(f"{path}:{number}: not a MOTChallenge row: {line[:80]!r}") from None
        frame, oid, left, top, width, height = values[:6]
        if len(values) > 6 and values[6] == 0:
            continue
        if len(values) == 9 and values[7] != 1:  # MOT16+: a class column (1 = pedestrian); MOT15's 10 have none
            continue
        x1, y1 = left * scale, top * scale
        frames[int(frame) - first_frame].append((int(oid), (x1, y1, x1 + width * scale, y1 + height * scale)))
    return dict(frames)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (``float [N, 4]``, x1 y1 x2 y2) with every box of ``b`` (``[M, 4]``):
    ``float [N, M]``."""
    return box_overlaps(a, b)[0]


def score_tracking(
    ground_truth: Mapping[int, FrameBoxes], hypotheses: Mapping[int, FrameBoxes], frames: Sequence[int]
) -> dict[str, float]:
    """MOTA, IDF1, HOTA and the rest of ``hypotheses`` (a tracker's boxes per frame) against ``ground_truth`` on
    ``frames`` (the frame indexes the tracker analysed, in order; frames without boxes count too), IoU >= 0.5 for
    CLEAR and IDF1.

    Returns:
        ``{"MOTA", "IDF1", "HOTA", "DetA", "AssA", "IDSW", "Frag", "recall", "precision", "MT", "ML", "gt_ids",
        "tracker_ids"}``; percentages as 0-100, counts as numbers.
    """
    from trackeval.metrics import CLEAR, HOTA, Identity

    gt_index: dict[int, int] = {}
    hyp_index: dict[int, int] = {}
    gt_ids, hyp_ids, similarity = [], [], []
    for frame in frames:
        gt = ground_truth.get(frame, [])
        hyp = hypotheses.get(frame, [])
        gt_ids.append(np.array([gt_index.setdefault(oid, len(gt_index)) for oid, _ in gt], int))
        hyp_ids.append(np.array([hyp_index.setdefault(oid, len(hyp_index)) for oid, _ in hyp], int))
        similarity.append(box_iou(np.array([b for _, b in gt]), np.array([b for _, b in hyp])))
    data = {
        "num_timesteps": len(frames),
        "num_gt_ids": len(gt_index),
        "num_tracker_ids": len(hyp_index),
        "num_gt_dets": int(sum(len(g) for g in gt_ids)),
        "num_tracker_dets": int(sum(len(h) for h in hyp_ids)),
        "gt_ids": gt_ids,
        "tracker_ids": hyp_ids,
        "similarity_scores": similarity,
    }
    quiet = {"PRINT_CONFIG": False}
    clear = CLEAR(quiet).eval_sequence(data)
    identity = Identity(quiet).eval_sequence(data)
    hota = HOTA(quiet).eval_sequence(data)
    return {
        "MOTA": 100 * float(clear["MOTA"]),
        "IDF1": 100 * float(identity["IDF1"]),
        "HOTA": 100 * float(np.mean(hota["HOTA"])),
        "DetA": 100 * float(np.mean(hota["DetA"])),
        "AssA": 100 * float(np.mean(hota["AssA"])),
        "IDSW": int(clear["IDSW"]),
        "Frag": int(clear["Frag"]),
        "recall": 100 * float(clear["CLR_Re"]),
        "precision": 100 * float(clear["CLR_Pr"]),
        "MT": int(clear["MT"]),
        "ML": int(clear["ML"]),
        "gt_ids": len(gt_index),
        "tracker_ids": len(hyp_index),
    }


def boxes_by_frame(rows: Iterable[tuple[int, int, float, float, float, float]]) -> dict[int, FrameBoxes]:
    """``{frame: boxes}`` of ``(frame, id, x1, y1, x2, y2)`` rows (a tracker's output)."""
    frames: dict[int, FrameBoxes] = defaultdict(list)
    for frame, oid, x1, y1, x2, y2 in rows:
        frames[int(frame)].append((int(oid), (float(x1), float(y1), float(x2), float(y2))))
    return dict(frames)
