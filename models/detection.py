"""Person detection and within-camera tracking with Ultralytics YOLO (ByteTrack or BoT-SORT).

One :class:`PersonTracker` per camera: the tracker state (track ids, Kalman filters) lives in it, so cameras never
share or reset each other's ids.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Optional

import numpy as np

from reid_app.errors import WeightsError
from reid_app.types import Detection

TRACKERS = {"bytetrack": "bytetrack.yaml", "botsort": "botsort.yaml"}


def _task_from_metadata(path: Path) -> Optional[str]:
    meta = path / "metadata.yaml" if path.is_dir() else None
    if meta is None or not meta.is_file():
        return None
    for line in meta.read_text(errors="replace").splitlines():
        if line.startswith("task:"):
            return line.split(":", 1)[1].strip()
    return None


#: Export-format (OpenVINO) models are called by one thread at a time. With four camera threads the OpenVINO CPU
#: plugin was seen to deadlock (two threads in ``InferRequest.infer``, two in ``create_infer_request``, none
#: progressing); it uses every core for one inference anyway, so serialising costs little throughput.
EXPORT_INFERENCE_LOCK = threading.Lock()


def inference_lock(weights: str | Path):
    """The lock to hold while calling a model made from ``weights``: :data:`EXPORT_INFERENCE_LOCK` for export
    folders, else a no-op context."""
    return EXPORT_INFERENCE_LOCK if Path(weights).is_dir() else contextlib.nullcontext()


def inference_device(weights: str | Path, device: str) -> str:
    """Where Ultralytics should run ``weights``: export folders (OpenVINO...) run on the CPU, others on ``device``."""
    return "cpu" if Path(weights).is_dir() else device


def load_yolo(weights: str | Path, what: str = "detector"):
    """Load an Ultralytics YOLO model from a ``.pt`` file, an export folder (OpenVINO...) or a hub name.

    Args:
        weights: local path, or an Ultralytics model name such as ``yolov8n-pose.pt`` (Ultralytics downloads it
            when the machine is online).
        what: the role of the model, used in error messages.

    Returns:
        ``ultralytics.YOLO``.

    Raises:
        WeightsError: the file is corrupt, not a YOLO model, or the name could not be downloaded.
    """
    from ultralytics import YOLO

    path = Path(weights)
    task = _task_from_metadata(path) if path.exists() else None
    try:
        model = YOLO(str(weights), task=task) if task else YOLO(str(weights))
        if path.exists() and path.suffix != ".pt":  # exported formats load on first use: prove it works now
            import numpy as np

            model.predict(np.zeros((64, 64, 3), np.uint8), verbose=False)
    except Exception as exc:  # ultralytics raises many types for unreadable or unreachable weights
        if not path.exists():
            raise WeightsError(f"{what} weights '{weights}' could not be downloaded ({type(exc).__name__}: {exc}); "
                               f"you may be offline: pass --detector PATH to a local model file or folder") from exc
        raise WeightsError(f"{what} weights {weights} could not be loaded ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); the file may be corrupt "
                           f"or not an Ultralytics YOLO model") from exc
    return model


class PersonTracker:
    """Detects people in a camera's frames and tracks them over time.

    Args:
        weights: YOLO weights (see :func:`load_yolo`); a pose model (task ``pose``) also yields COCO-17 keypoints.
        device: ``cpu``, ``cuda`` or ``cuda:N`` (export formats such as OpenVINO always run on the CPU).
        tracker: ``bytetrack`` or ``botsort``.
        confidence: minimum detection score in ``[0, 1]``.
        image_size: inference size in pixels (longest side).
        model: an already loaded YOLO model to use instead of loading ``weights`` (must not be shared between
            trackers, since the tracker state lives on it).

    Raises:
        WeightsError: see :func:`load_yolo`; also when the model cannot detect persons.
    """

    def __init__(self, weights: str | Path, device: str = "cpu", tracker: str = "bytetrack",
                 confidence: float = 0.25, image_size: int = 640, model=None):
        if tracker not in TRACKERS:
            raise ValueError(f"unknown tracker {tracker!r}; choose one of {sorted(TRACKERS)}")
        self.model = model if model is not None else load_yolo(weights)
        self.task = self.model.task
        names = getattr(self.model, "names", None) or {}
        if names and names.get(0) != "person":
            raise WeightsError(f"detector {weights} has no 'person' class 0 (classes: {list(names.values())[:5]}); "
                               f"use a COCO-trained YOLO detector or pose model")
        self.device = inference_device(weights, device)
        self._lock = inference_lock(weights)
        self.tracker = TRACKERS[tracker]
        self.confidence = confidence
        self.image_size = image_size

    @property
    def gives_keypoints(self) -> bool:
        """True when the detector is a pose model, so its detections carry COCO-17 keypoints."""
        return self.task == "pose"

    def update(self, image: np.ndarray) -> list[Detection]:
        """Detect and track the people in the next frame of this camera.

        Args:
            image: ``uint8 [H, W, 3]`` BGR frame.

        Returns:
            Tracked detections (untracked boxes, which the tracker has not confirmed yet, are dropped), with
            ``float32 [17, 3]`` keypoints in frame pixels when :attr:`gives_keypoints`.
        """
        with self._lock:
            result = self.model.track(image, persist=True, tracker=self.tracker, classes=[0],
                                      conf=self.confidence, imgsz=self.image_size, device=self.device,
                                      verbose=False)[0]
        boxes = result.boxes
        if boxes is None or boxes.id is None or len(boxes) == 0:
            return []
        xyxy = boxes.xyxy.cpu().numpy().astype(np.float32)
        ids = boxes.id.cpu().numpy().astype(np.int64)
        scores = boxes.conf.cpu().numpy().astype(np.float32)
        kps = None
        if result.keypoints is not None and result.keypoints.data is not None and len(result.keypoints.data):
            kps = result.keypoints.data.cpu().numpy().astype(np.float32)
            if kps.shape[-1] == 2:  # no confidences in the model output: treat as visible
                kps = np.concatenate([kps, np.ones(kps.shape[:-1] + (1,), np.float32)], axis=-1)
        return [Detection(track_id=int(ids[i]), box=xyxy[i], score=float(scores[i]),
                          keypoints=None if kps is None else kps[i]) for i in range(len(ids))]
