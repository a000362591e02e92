"""Person detection with Ultralytics YOLO: one :class:`PersonDetector` call detects the people in a batch of frames
(one frame from each of several cameras), giving columnar :class:`PersonDetections`; within-camera tracking lives in
``models.tracking`` (one tracker state per camera, never shared).
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from common.errors import WeightsError, setting


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

    from models.native_aspect import COMPILE_LOCK

    path = Path(weights)
    task = _task_from_metadata(path) if path.exists() else None
    try:
        with COMPILE_LOCK:  # exports compile here (see COMPILE_LOCK)
            model = YOLO(str(weights), task=task) if task else YOLO(str(weights))
            if path.exists() and path.suffix != ".pt":  # exported formats load on first use: prove it works now
                model.predict(np.zeros((64, 64, 3), np.uint8), verbose=False)
    except Exception as exc:  # ultralytics raises many types for unreadable or unreachable weights
        if not path.exists():
            raise WeightsError(
                f"{what} weights '{weights}' could not be downloaded ({type(exc).__name__}: {exc}); "
                f"you may be offline: set {setting('detector')} to a local model file or folder"
            ) from exc
        raise WeightsError(
            f"{what} weights {weights} could not be loaded ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); the file may be corrupt "
            f"or not an Ultralytics YOLO model"
        ) from exc
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
        return PersonDetections(
            self.xyxy[index], self.conf[index], None if self.keypoints is None else self.keypoints[index]
        )

    @property
    def cls(self) -> np.ndarray:
        """``float32 [N]`` class ids (all 0: person)."""
        return np.zeros(len(self), np.float32)

    @property
    def xywh(self) -> np.ndarray:
        """``float32 [N, 4]`` boxes as centre x, centre y, width, height (pixels)."""
        xy = (self.xyxy[:, :2] + self.xyxy[:, 2:]) / 2
        return np.concatenate([xy, self.xyxy[:, 2:] - self.xyxy[:, :2]], axis=1)


def detections_from_result(result) -> PersonDetections:
    """The people of one Ultralytics ``Results`` (boxes in the image's pixels; keypoints ``[N, 17, 3]`` when the
    model is a pose model, a confidence column of ones added when it gives only ``(x, y)``)."""
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
    """Detects people in frames, several frames (one per camera) per call.

    Args:
        weights: YOLO weights (see :func:`load_yolo`); a pose model (task ``pose``) also yields COCO-17 keypoints.
        device: ``cpu``, ``cuda`` or ``cuda:N`` (export formats such as OpenVINO always run on the CPU).
        confidence: minimum detection score in ``[0, 1]``; the default 0.1 keeps the low-score boxes that
            ByteTrack's second association uses (new tracks still need 0.25).
        image_size: inference size in pixels (longest side).
        model: an already loaded YOLO model to use instead of loading ``weights``.
        half: run in half precision (CUDA with ``.pt``/``.yaml`` models; ignored elsewhere).
        native_aspect: run an OpenVINO detection or pose export at each frame's own aspect ratio
            (``models.native_aspect``: a 16:9 frame costs a 640 x 384 input instead of 640 x 640, same boxes); other
            models always go through Ultralytics' ``predict``.

    Raises:
        WeightsError: see :func:`load_yolo`; also when the model cannot detect persons.
    """

    def __init__(
        self,
        weights: str | Path,
        device: str = "cpu",
        confidence: float = 0.1,
        image_size: int = 640,
        model=None,
        half: bool = True,
        native_aspect: bool = True,
    ):
        from models.native_aspect import load_native_aspect

        self.model = model if model is not None else load_yolo(weights)
        self.task = self.model.task
        names = getattr(self.model, "names", None) or {}
        if names and names.get(0) != "person":
            raise WeightsError(
                f"detector {weights} has no 'person' class 0 (classes: {list(names.values())[:5]}); "
                f"use a COCO-trained YOLO detector or pose model"
            )
        self.device = inference_device(weights, device)
        self.half = half and self.device.startswith("cuda")
        self._lock = inference_lock(weights)
        self.confidence = confidence
        self.image_size = image_size
        #: The native-aspect runner of an OpenVINO detection or pose export, else None (Ultralytics' predict).
        self.native = load_native_aspect(weights, self.task, names, image_size) if native_aspect else None

    @property
    def gives_keypoints(self) -> bool:
        """True when the detector is a pose model, so its detections carry COCO-17 keypoints."""
        return self.task == "pose"

    @property
    def concurrent(self) -> bool:
        """True when calls from several threads may run at once (the native-aspect runner's own infer requests);
        else they are serialised."""
        return self.native is not None

    @property
    def batches_pay(self) -> bool:
        """True when one call on several frames is cheaper than a call per frame (CUDA); a fixed batch-1 export on
        the CPU runs a batch frame by frame anyway."""
        return self.device.startswith("cuda")

    def detect(self, images: Sequence[np.ndarray]) -> list[PersonDetections]:
        """Detect the people in each image with one call.

        Args:
            images: ``uint8 [H, W, 3]`` BGR frames (sizes may differ).

        Returns:
            One :class:`PersonDetections` per image, in order.
        """
        if not images:
            return []
        if self.native is not None:  # thread-safe: concurrent cameras overlap their inferences
            return [PersonDetections(*found) for found in self.native.detect(images, self.confidence)]
        with self._lock:
            extra = {"half": True} if self.half else {}  # half precision on CUDA only (ultralytics warns otherwise)
            results = self.model.predict(
                list(images),
                classes=[0],
                conf=self.confidence,
                imgsz=self.image_size,
                device=self.device,
                verbose=False,
                **extra,
            )
        return [detections_from_result(r) for r in results]


class BatchingDetector:
    """One :class:`PersonDetector` shared by every camera thread: frames that arrive while an inference call runs
    are detected together in the next call (one batch across cameras; trackers stay per camera). See
    ``models.batching.Batcher`` (no thread of its own; an error reaches every caller of its batch). A detector
    whose calls may overlap (:attr:`PersonDetector.concurrent`) is called by each camera thread directly instead:
    on the CPU two overlapping single-frame inferences beat one batch run frame by frame.

    Args:
        detector: the detector to share.
        max_batch: most frames per inference call.
    """

    def __init__(self, detector: PersonDetector, max_batch: int = 16):
        from models.batching import Batcher

        self.detector = detector
        # waiting for the other cameras pays only where a batch is cheaper than its frames one by one
        self._batcher = Batcher(
            detector.detect, max_batch, linger_s=0.1 if getattr(detector, "batches_pay", False) else 0.0
        )
        self._direct = getattr(detector, "concurrent", False)
        self._count_lock = threading.Lock()
        self._direct_calls = self._direct_images = 0

    @property
    def calls(self) -> int:
        """Inference calls made so far."""
        return self._batcher.calls + self._direct_calls

    @property
    def images(self) -> int:
        """Frames detected so far (``images / calls`` is the mean batch size)."""
        return self._batcher.items + self._direct_images

    @property
    def gives_keypoints(self) -> bool:
        """See :attr:`PersonDetector.gives_keypoints`."""
        return self.detector.gives_keypoints

    def detect(self, images: Sequence[np.ndarray]) -> list[PersonDetections]:
        """Same contract as :meth:`PersonDetector.detect`; blocks until this caller's frames are detected."""
        if not self._direct:
            return self._batcher.submit(list(images))
        with self._count_lock:
            self._direct_calls += 1
            self._direct_images += len(images)
        return self.detector.detect(images)
