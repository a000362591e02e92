"""Person detection with Ultralytics YOLO: one :class:`PersonDetector` call detects the people in a batch of frames
(one frame from each of several cameras), giving columnar :class:`PersonDetections`; within-camera tracking lives in
``models.tracking`` (one tracker state per camera, never shared).
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from reid_app.errors import WeightsError


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


@dataclass
class PersonDetections:
    """The people detected in one frame, column by column (no per-person Python objects).

    Attributes:
        xyxy: ``float32 [N, 4]`` boxes ``(x1, y1, x2, y2)`` in frame pixels.
        conf: ``float32 [N]`` detector confidences in ``[0, 1]``.
        keypoints: ``float32 [N, 17, 3]`` COCO-17 ``(x, y, confidence)`` in frame pixels when the detector is a
            pose model, else None.
    """

    xyxy: np.ndarray
    conf: np.ndarray
    keypoints: Optional[np.ndarray] = None

    @classmethod
    def empty(cls) -> "PersonDetections":
        """No people."""
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, index) -> "PersonDetections":
        """The rows selected by a boolean mask or an index array (what Ultralytics' trackers ask for)."""
        return PersonDetections(self.xyxy[index], self.conf[index],
                                None if self.keypoints is None else self.keypoints[index])

    @property
    def cls(self) -> np.ndarray:
        """``float32 [N]`` class ids (all 0: person)."""
        return np.zeros(len(self), np.float32)

    @property
    def xywh(self) -> np.ndarray:
        """``float32 [N, 4]`` boxes as centre x, centre y, width, height (pixels)."""
        xy = (self.xyxy[:, :2] + self.xyxy[:, 2:]) / 2
        return np.concatenate([xy, self.xyxy[:, 2:] - self.xyxy[:, :2]], axis=1)


def _detections_of(result) -> PersonDetections:
    boxes = result.boxes
    if boxes is None or len(boxes) == 0:
        return PersonDetections.empty()
    data = boxes.data.cpu().numpy()  # one device-to-host copy: [N, 6] x1 y1 x2 y2 conf cls
    keypoints = None
    if result.keypoints is not None and result.keypoints.data is not None and len(result.keypoints.data):
        keypoints = result.keypoints.data.cpu().numpy().astype(np.float32)
        if keypoints.shape[-1] == 2:  # no confidences in the model output: treat as visible
            keypoints = np.concatenate([keypoints, np.ones(keypoints.shape[:-1] + (1,), np.float32)], axis=-1)
    return PersonDetections(np.ascontiguousarray(data[:, :4], np.float32), data[:, 4].astype(np.float32), keypoints)


class PersonDetector:
    """Detects people in frames, several frames (one per camera) per inference call.

    Args:
        weights: YOLO weights (see :func:`load_yolo`); a pose model (task ``pose``) also yields COCO-17 keypoints.
        device: ``cpu``, ``cuda`` or ``cuda:N`` (export formats such as OpenVINO always run on the CPU).
        confidence: minimum detection score in ``[0, 1]``; the default 0.1 keeps the low-score boxes that
            ByteTrack's second association uses (new tracks still need 0.25).
        image_size: inference size in pixels (longest side).
        model: an already loaded YOLO model to use instead of loading ``weights``.
        half: run in half precision (CUDA with ``.pt``/``.yaml`` models; ignored elsewhere).
        pack_frames: with an export of fixed square input (OpenVINO...; ``.pt`` models letterbox to the frame's
            own aspect instead), stack two landscape frames of one size into one input when each keeps at least
            :attr:`min_pack_scale` of the scale it would have alone: a 16:9 frame fills 56% of a square input, so
            two cost one inference (lab cameras: 0.88 of the scale). Off by default: on the lab cameras it halved
            detection time and kept box recall (0.75 against 0.72), but the frames paired by timing made tracks
            more fragmented (33 against 26) and the identities' co-membership recall against the calibration fell
            from >= 0.8 to 0.65.

    Raises:
        WeightsError: see :func:`load_yolo`; also when the model cannot detect persons.
    """

    #: Grey rows between two packed frames (pixels), so no box spans both.
    seam = 16
    min_pack_scale = 0.85

    def __init__(self, weights: str | Path, device: str = "cpu", confidence: float = 0.1, image_size: int = 640,
                 model=None, half: bool = True, pack_frames: bool = False):
        self.model = model if model is not None else load_yolo(weights)
        self.task = self.model.task
        names = getattr(self.model, "names", None) or {}
        if names and names.get(0) != "person":
            raise WeightsError(f"detector {weights} has no 'person' class 0 (classes: {list(names.values())[:5]}); "
                               f"use a COCO-trained YOLO detector or pose model")
        self.device = inference_device(weights, device)
        self.half = half and self.device.startswith("cuda")
        self._lock = inference_lock(weights)
        self.confidence = confidence
        self.image_size = image_size
        self.pack_frames = pack_frames and Path(weights).is_dir()

    @property
    def gives_keypoints(self) -> bool:
        """True when the detector is a pose model, so its detections carry COCO-17 keypoints."""
        return self.task == "pose"

    @property
    def batches_pay(self) -> bool:
        """True when one call on several frames is cheaper than a call per frame (CUDA, or packed frames); a
        fixed batch-1 export on the CPU runs a batch frame by frame anyway."""
        return self.device.startswith("cuda") or self.pack_frames

    def detect(self, images: Sequence[np.ndarray]) -> list[PersonDetections]:
        """Detect the people in each image with one inference call.

        Args:
            images: ``uint8 [H, W, 3]`` BGR frames (sizes may differ).

        Returns:
            One :class:`PersonDetections` per image, in order.
        """
        if not images:
            return []
        inputs, layout = self._pack(list(images)) if self.pack_frames else (list(images), None)
        with self._lock:
            extra = {"half": True} if self.half else {}  # half precision on CUDA only (ultralytics warns otherwise)
            results = self.model.predict(inputs, classes=[0], conf=self.confidence, imgsz=self.image_size,
                                         device=self.device, verbose=False, **extra)
        detections = [_detections_of(r) for r in results]
        return detections if layout is None else self._unpack(detections, layout, len(images))

    def _packable(self, a: np.ndarray, b: np.ndarray) -> bool:
        if a.shape != b.shape:
            return False
        h, w = a.shape[:2]
        return max(w, 2 * h + self.seam) <= max(w, h) / self.min_pack_scale

    def _pack(self, images: list[np.ndarray]):
        """Inputs and, per input, the ``(image index, row offset, height)`` of the frames in it."""
        inputs, layout, i = [], [], 0
        while i < len(images):
            if i + 1 < len(images) and self._packable(images[i], images[i + 1]):
                a, b = images[i], images[i + 1]
                gap = np.full((self.seam, a.shape[1], 3), 114, np.uint8)
                inputs.append(np.concatenate([a, gap, b]))
                layout.append([(i, 0, a.shape[0]), (i + 1, a.shape[0] + self.seam, b.shape[0])])
                i += 2
            else:
                inputs.append(images[i])
                layout.append([(i, 0, images[i].shape[0])])
                i += 1
        return inputs, layout

    @staticmethod
    def _unpack(detections: list[PersonDetections], layout, count: int) -> list[PersonDetections]:
        out: list[PersonDetections] = [PersonDetections.empty()] * count
        for dets, frames in zip(detections, layout):
            centre = (dets.xyxy[:, 1] + dets.xyxy[:, 3]) / 2
            for index, offset, height in frames:
                mine = (centre >= offset) & (centre < offset + height)
                part = dets[mine]
                xyxy = part.xyxy.copy()
                xyxy[:, [1, 3]] = np.clip(xyxy[:, [1, 3]] - offset, 0, height)
                keypoints = None
                if part.keypoints is not None:
                    keypoints = part.keypoints.copy()
                    keypoints[..., 1] -= offset
                out[index] = PersonDetections(xyxy, part.conf, keypoints)
        return out


class BatchingDetector:
    """One :class:`PersonDetector` shared by every camera thread: frames that arrive while an inference call runs
    are detected together in the next call (one batch across cameras; trackers stay per camera). See
    ``models.batching.Batcher`` (no thread of its own; an error reaches every caller of its batch).

    Args:
        detector: the detector to share.
        max_batch: most frames per inference call.
    """

    def __init__(self, detector: PersonDetector, max_batch: int = 16):
        from models.batching import Batcher

        self.detector = detector
        # waiting for the other cameras pays only where a batch is cheaper than its frames one by one
        self._batcher = Batcher(detector.detect, max_batch,
                                linger_s=0.1 if getattr(detector, "batches_pay", False) else 0.0)

    @property
    def calls(self) -> int:
        """Inference calls made so far."""
        return self._batcher.calls

    @property
    def images(self) -> int:
        """Frames detected so far (``images / calls`` is the mean batch size)."""
        return self._batcher.items

    @property
    def gives_keypoints(self) -> bool:
        """See :attr:`PersonDetector.gives_keypoints`."""
        return self.detector.gives_keypoints

    def detect(self, images: Sequence[np.ndarray]) -> list[PersonDetections]:
        """Same contract as :meth:`PersonDetector.detect`; blocks until this caller's frames are detected."""
        return self._batcher.submit(list(images))
