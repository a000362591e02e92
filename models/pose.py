"""COCO-17 pose estimation for tracked people, behind one interface with interchangeable backends.

Backends:
    * :class:`DetectorKeypoints` - the detector is a YOLO pose model; its keypoints are used as they are (free).
    * :class:`YoloTopDownPose` - a YOLO pose model run top-down on each detection's padded crop.
    * :class:`MMPoseEstimator` - mmpose's top-down models (optional; needs a working mmcv, imported lazily).
    * :class:`NoPose` - no keypoints; part boxes fall back to fixed body-ratio stripes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Sequence

import numpy as np

from common.errors import WeightsError, setting
from common.types import Detection


class PoseEstimator(ABC):
    """Fills ``Detection.keypoints`` (``float32 [17, 3]``, frame pixels, COCO-17 order) for one frame's people."""

    name = "pose"

    @abstractmethod
    def estimate(self, image: np.ndarray, detections: Sequence[Detection]) -> None:
        """Set ``keypoints`` on each detection in place.

        Args:
            image: ``uint8 [H, W, 3]`` BGR frame.
            detections: the frame's tracked people.
        """


class DetectorKeypoints(PoseEstimator):
    """Keypoints come with the detections (the detector is a pose model); nothing to do."""

    name = "detector"

    def estimate(self, image: np.ndarray, detections: Sequence[Detection]) -> None:
        return None


class NoPose(PoseEstimator):
    """No pose estimate: keypoints stay ``None`` and part boxes use the fixed-ratio fallback."""

    name = "none"

    def estimate(self, image: np.ndarray, detections: Sequence[Detection]) -> None:
        return None


def _padded_crop(image: np.ndarray, box: np.ndarray, pad: float = 0.1) -> tuple[np.ndarray, float, float]:
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    dx, dy = pad * (x2 - x1), pad * (y2 - y1)
    cx1, cy1 = int(max(0, x1 - dx)), int(max(0, y1 - dy))
    cx2, cy2 = int(min(w, x2 + dx)), int(min(h, y2 + dy))
    return image[cy1:cy2, cx1:cx2], float(cx1), float(cy1)


def _best_keypoints(result) -> np.ndarray | None:
    """``float32 [17, 3]`` keypoints of the highest-scoring person in one Ultralytics result, or None."""
    if result.keypoints is None or result.boxes is None or len(result.boxes) == 0:
        return None
    best = int(result.boxes.conf.argmax())
    return result.keypoints.data[best].cpu().numpy().astype(np.float32).copy()


class YoloTopDownPose(PoseEstimator):
    """A YOLO pose model run on each person's padded crop; the highest-scoring pose in the crop is kept.

    Args:
        weights: YOLO pose weights (path or Ultralytics name).
        device: ``cpu`` / ``cuda[:N]`` (export formats such as OpenVINO always run on the CPU).
        image_size: inference size in pixels for the crops.

    Raises:
        WeightsError: the weights cannot be loaded or are not a pose model.
    """

    name = "yolo-topdown"

    def __init__(self, weights: str | Path, device: str = "cpu", image_size: int = 256):
        from models.detection import inference_device, inference_lock, load_yolo

        self.model = load_yolo(weights, what="pose")
        if self.model.task != "pose":
            raise WeightsError(f"pose weights {weights} are a '{self.model.task}' model, not a pose model")
        from models.native_aspect import load_native_aspect

        self.device = inference_device(weights, device)
        self._lock = inference_lock(weights)
        self.image_size = image_size
        #: An OpenVINO pose export run at the mosaic's own size (``models.native_aspect``), else None.
        self.native = load_native_aspect(weights, self.model.task, self.model.names)

    def estimate_crops(self, crops: Sequence[np.ndarray], margin: float = 0.25) -> list[np.ndarray | None]:
        """Keypoints of the main person in each person image (e.g. a re-id dataset's tight crops).

        Each crop is first framed by a grey border of ``margin`` x its size on every side: a detector finds a
        person filling the whole image far less often than one with some context around them.

        Args:
            crops: ``uint8 [h, w, 3]`` BGR images, one person each.
            margin: border width as a fraction of the crop's height/width.

        Returns:
            Per crop ``float32 [17, 3]`` ``(x, y, confidence)`` in that crop's pixels, or None when no person is
            found.
        """
        import cv2

        framed, offsets = [], []
        for crop in crops:
            dy, dx = int(round(margin * crop.shape[0])), int(round(margin * crop.shape[1]))
            framed.append(cv2.copyMakeBorder(crop, dy, dy, dx, dx, cv2.BORDER_CONSTANT, value=(114, 114, 114)))
            offsets.append((dx, dy))
        out: list[np.ndarray | None] = []
        if not framed:
            return out
        with self._lock:
            results = self.model.predict(framed, imgsz=self.image_size, device=self.device, verbose=False)
        for result, (dx, dy) in zip(results, offsets):
            kp = _best_keypoints(result)
            if kp is not None:
                kp[:, 0] -= dx
                kp[:, 1] -= dy
            out.append(kp)
        return out

    #: Mosaic cell in pixels (width, height): a person box is scaled to fit one cell, 8 cells per 640 x 640 image.
    cell = (160, 320)
    cell_margin = 8
    #: Cells per mosaic row and rows per mosaic (640 x 640 pixels when full).
    columns, rows = 4, 2

    def estimate(self, image: np.ndarray, detections: Sequence[Detection]) -> None:
        """Set the keypoints of every detection, several people per inference call (see :meth:`estimate_many`)."""
        self.estimate_many([(image, detections)])

    def _mosaic_grid(self, people: int) -> tuple[int, int]:
        """``(columns, rows)`` of a mosaic holding ``people`` (at most ``columns * rows``): the full 640 x 640 grid
        for an export of fixed size, else about the cells needed, in four input sizes (1, 2, 4 or 8 cells: one
        person is a 160 x 320 input), each compiled once (about 0.8 s, 0.25 s from OpenVINO's cache)."""
        if self.native is None or people > self.columns:
            return self.columns, self.rows
        return (1 if people == 1 else 2 if people == 2 else self.columns), 1

    def estimate_many(self, frames: Sequence[tuple[np.ndarray, Sequence[Detection]]]) -> list[None]:
        """Set the keypoints of the people of several frames (e.g. one frame of each camera) together.

        Each person's padded box is scaled to fit a ``cell`` (aspect kept, grey margin) and the cells are laid out
        in mosaics of up to 8 people (4 x 2 cells, 640 x 640 pixels), so that the people of many frames cost one or
        two calls instead of one per person, whatever the export's fixed batch size. An OpenVINO export runs each
        mosaic at its own size (``models.native_aspect``), so a call costs pixels in proportion to its people. The
        highest-scoring pose whose box centre falls in a cell is that person's.

        Args:
            frames: ``(uint8 [H, W, 3] BGR frame, its detections)`` pairs; keypoints are set in place.

        Returns:
            One None per frame (for ``models.batching.Batcher``).
        """
        import cv2

        from models.detection import detections_from_result

        cw, ch = self.cell
        per_mosaic = self.columns * self.rows
        people = []
        for image, detections in frames:
            for det in detections:
                crop, ox, oy = _padded_crop(image, det.box)
                if crop.size:
                    people.append((det, crop, ox, oy))
        mosaics, placed = [], []
        for start in range(0, len(people), per_mosaic):
            group = people[start : start + per_mosaic]
            cols, rows = self._mosaic_grid(len(group))
            mosaic = np.full((rows * ch, cols * cw, 3), 114, np.uint8)
            for slot, (det, crop, ox, oy) in enumerate(group):
                scale = min((cw - 2 * self.cell_margin) / crop.shape[1], (ch - 2 * self.cell_margin) / crop.shape[0])
                w, h = max(1, int(crop.shape[1] * scale)), max(1, int(crop.shape[0] * scale))
                x0 = (slot % cols) * cw + (cw - w) // 2
                y0 = (slot // cols) * ch + (ch - h) // 2
                mosaic[y0 : y0 + h, x0 : x0 + w] = cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)
                placed.append((len(mosaics), slot, cols, det, scale, x0, y0, ox, oy))
            mosaics.append(mosaic)
        if not mosaics:
            return [None] * len(frames)
        if self.native is not None:
            found = [self.native.detect_exact(m, confidence=0.25) for m in mosaics]
        else:
            with self._lock:
                results = self.model.predict(mosaics, imgsz=640, device=self.device, verbose=False)
            found = [(d.xyxy, d.conf, d.keypoints) for d in map(detections_from_result, results)]
        for index, slot, cols, det, scale, x0, y0, ox, oy in placed:
            kp = self._cell_keypoints(*found[index], slot, cols)
            if kp is not None:
                kp[:, 0] = (kp[:, 0] - x0) / scale + ox
                kp[:, 1] = (kp[:, 1] - y0) / scale + oy
                det.keypoints = kp
        return [None] * len(frames)

    def _cell_keypoints(
        self, xyxy: np.ndarray, conf: np.ndarray, keypoints: np.ndarray | None, slot: int, cols: int
    ) -> np.ndarray | None:
        if keypoints is None or len(conf) == 0:
            return None
        cw, ch = self.cell
        cx, cy = (xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2
        x1, y1 = (slot % cols) * cw, (slot // cols) * ch
        inside = np.flatnonzero((cx >= x1) & (cx < x1 + cw) & (cy >= y1) & (cy < y1 + ch))
        if len(inside) == 0:
            return None
        return keypoints[inside[np.argmax(conf[inside])]].astype(np.float32).copy()


class BatchingPose(PoseEstimator):
    """One :class:`YoloTopDownPose` shared by every camera thread: the people of the frames that arrive while a
    call runs are packed into the mosaics of the next call (``models.batching.Batcher``; no thread of its own).

    Args:
        pose: the top-down estimator to share.
        max_frames: most frames per call.
    """

    name = YoloTopDownPose.name

    def __init__(self, pose: YoloTopDownPose, max_frames: int = 16):
        from models.batching import Batcher

        self.pose = pose
        #: Its ``calls`` and ``items`` (frames) say how well the cameras' people were batched.
        self.batcher = Batcher(pose.estimate_many, max_frames)

    def estimate(self, image: np.ndarray, detections: Sequence[Detection]) -> None:
        if detections:
            self.batcher.submit([(image, detections)])


class MMPoseEstimator(PoseEstimator):
    """mmpose top-down pose (e.g. RTMPose, HRNet) on the detection boxes.

    Args:
        config: mmpose model config file.
        checkpoint: its checkpoint file.
        device: ``cpu`` / ``cuda[:N]``.

    Raises:
        WeightsError: mmpose (or its compiled mmcv) is not importable, or the model cannot be built.
    """

    name = "mmpose"

    def __init__(self, config: str, checkpoint: str, device: str = "cpu"):
        try:
            from mmpose.apis import inference_topdown, init_model
        except Exception as exc:  # ImportError, or mmcv's compiled ops failing to load
            raise WeightsError(
                f"the mmpose pose backend needs mmpose with a compiled mmcv "
                f"({type(exc).__name__}: {exc}); install them (see README) or use {setting('pose')} auto"
            ) from exc
        try:
            self.model = init_model(config, checkpoint, device=device)
        except Exception as exc:
            raise WeightsError(f"mmpose model {config} / {checkpoint} could not be built: {exc}") from exc
        self._infer = inference_topdown

    def estimate(self, image: np.ndarray, detections: Sequence[Detection]) -> None:
        if not detections:
            return
        boxes = np.stack([d.box for d in detections]).astype(np.float32)
        results = self._infer(self.model, image, boxes, bbox_format="xyxy")
        for det, res in zip(detections, results):
            inst = res.pred_instances
            det.keypoints = np.concatenate(
                [np.asarray(inst.keypoints[0], np.float32), np.asarray(inst.keypoint_scores[0], np.float32)[:, None]],
                axis=1,
            )
