"""A YOLOv8-family detection or pose export (OpenVINO IR) run at each frame's own aspect ratio, not a fixed square.

Ultralytics runs a static export at the size it was exported with (640 x 640): a 16:9 camera frame is letterboxed
into it and 44% of the input is grey padding that the network still convolves. The network itself is fully
convolutional; only the export's box decoding (the DFL ``Reshape`` to 8,400 anchors and the anchor grid) is fixed
to 640 x 640. :class:`NativeAspectDetector` therefore cuts the IR just before that decoding (the per-level box
distribution, class logit and, for pose, keypoint maps of the YOLOv8 head), reshapes what is left to an input of
the frame's aspect (longest side ``image_size``, the other rounded up to the stride, 32), and decodes the maps
itself as the YOLOv8 head does: Distribution Focal Loss boxes (Li et al., "Generalized Focal Loss", NeurIPS 2020, Sec.
3.3: the box side is
the expectation of a softmax over 16 bins) around anchor points at cell centres, scaled by the level's stride
(Jocher et al., Ultralytics YOLOv8, ``ultralytics.nn.modules.head.Detect``; keypoints as ``Pose.kpts_decode``:
``(2 * raw + cell corner) * stride``, visibility a sigmoid). Non-maximum suppression is torchvision's. A 1288 x 728
frame then costs a 640 x 384 input: 0.6 of the square's pixels for the same boxes.

Pre-processing (BGR to RGB, 0-255 to 0-1, HWC to CHW) is compiled into the model with OpenVINO's
``PrePostProcessor``; the letterbox resize is OpenCV's, with Ultralytics' rounding so that boxes at the export's own
square size equal Ultralytics' to within a pixel (``tests/models/test_native_aspect.py``).
"""

from __future__ import annotations

import math
import queue
import threading
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from common.settings import compiled_model_cache_dir

#: Held while OpenVINO compiles or loads a model, in this module and in ``models.detection.load_yolo``: compiling
#: with a model cache switches the process locale to "C" and back, so two compiles at once in different threads
#: could leave it at "C" (then every text a subprocess prints decodes as ASCII).
COMPILE_LOCK = threading.Lock()

#: Bins of the Distribution Focal Loss box regression of the YOLOv8 head (``Detect.reg_max``).
REG_MAX = 16
STRIDES = (8, 16, 32)
LETTERBOX_GREY = 114


def _head_maps(model, classes: int, keypoint_values: int = 0) -> Optional[dict]:
    """The per-level output maps of a YOLOv8 detection or pose head, or None when the IR has no such head.

    The head concatenates the three levels' maps after reshaping each ``[1, C, h, w]`` map to ``[1, C, h*w]``: one
    ``Concat`` of three such ``Reshape``s carries ``C = 4 * REG_MAX`` box-distribution channels, one ``C = classes``
    class logits and, in a pose head, one ``C = keypoint_values`` (17 x 3) raw keypoints.

    Returns:
        ``{"box": [...], "cls": [...], "kpt": [...]}`` (``kpt`` only with ``keypoint_values``): three OpenVINO
        outputs each, finest level (stride 8) first.
    """
    roles = {4 * REG_MAX: "box", classes: "cls"}
    if keypoint_values:
        roles[keypoint_values] = "kpt"
    found: dict[str, list] = {}
    for op in model.get_ordered_ops():
        if op.get_type_name() != "Concat" or op.get_input_size() != 3:
            continue
        sources = []
        for i in range(3):
            node = op.input_value(i).get_node()
            if node.get_type_name() != "Reshape":
                break
            shape = node.input_value(0).get_partial_shape()
            if shape.rank.is_dynamic or shape.rank.get_length() != 4 or shape[1].is_dynamic:
                break
            sources.append(node.input_value(0))
        channels = {s.get_partial_shape()[1].get_length() for s in sources}
        if len(sources) == 3 and len(channels) == 1:
            role = roles.get(channels.pop())
            if role is not None:
                found.setdefault(role, sources)
    return found if set(found) == set(roles.values()) else None


def letterbox_geometry(height: int, width: int, image_size: int, square: bool = False, stride: int = 32):
    """Where a ``height`` x ``width`` frame goes in the network input (Ultralytics' ``LetterBox`` rounding).

    Returns:
        ``(input_h, input_w, scale, (new_w, new_h), (left, top))``: the input size (multiples of ``stride``, or
        ``image_size`` square), the resize factor, the resized frame's size and its offset in the input (pixels).
    """
    scale = min(image_size / height, image_size / width)
    new_w, new_h = int(round(width * scale)), int(round(height * scale))
    if square:
        input_h = input_w = image_size
    else:
        input_h, input_w = (int(math.ceil(v / stride) * stride) for v in (new_h, new_w))
    left, top = int(round((input_w - new_w) / 2 - 0.1)), int(round((input_h - new_h) / 2 - 0.1))
    return input_h, input_w, scale, (new_w, new_h), (left, top)


class NativeAspectDetector:
    """Person detection with a YOLOv8 OpenVINO detection or pose export at each frame's own aspect ratio.

    Args:
        folder: the ``*_openvino_model`` folder (its ``.xml`` + ``.bin`` and ``metadata.yaml``).
        classes: the model's class count (80 for COCO, 1 for the person pose model); class 0 must be person.
        keypoints: keypoints per person of a pose head (17 for COCO), 0 for a detection head.
        image_size: the input's longest side in pixels (the export's 640 by default; larger finds smaller people
            at the cost of more pixels).
        square: letterbox into ``image_size`` x ``image_size`` as the export was made (what Ultralytics does).
        iou: NMS IoU threshold (Ultralytics' default 0.7).
        max_det: most boxes per frame.
        concurrency: inferences that may run at once from different threads (cameras); thread-safe either way.

    Raises:
        ValueError: the IR is not a YOLOv8-style head this class can cut (use Ultralytics' own runner;
            :func:`load_native_aspect` returns None instead of raising).
    """

    def __init__(
        self,
        folder: str | Path,
        classes: int = 80,
        keypoints: int = 0,
        image_size: int = 640,
        square: bool = False,
        iou: float = 0.7,
        max_det: int = 300,
        concurrency: int = 2,
    ):
        import openvino as ov

        folder = Path(folder)
        xml = folder if folder.is_file() else next(folder.glob("*.xml"), None)
        if xml is None:
            raise ValueError(f"{folder} holds no OpenVINO .xml model")
        self._core = ov.Core()
        cache = compiled_model_cache_dir()
        try:
            cache.mkdir(parents=True, exist_ok=True)
            self._core.set_property({"CACHE_DIR": str(cache)})
        except OSError:  # a read-only home: compile every time
            pass
        with COMPILE_LOCK:
            model = self._core.read_model(str(xml))
        maps = _head_maps(model, classes, 3 * keypoints)
        if maps is None:
            raise ValueError(f"{xml} has no YOLOv8 {'pose' if keypoints else 'detection'} head with {classes} classes")
        outputs = maps["box"] + maps["cls"] + maps.get("kpt", [])
        self._model = ov.Model(outputs, model.get_parameters(), "yolo-head-maps")
        self._classes = classes
        self.keypoints = keypoints
        self.image_size = image_size
        self.square = square
        self.iou = iou
        self.max_det = max_det
        #: Inferences that may run at once (one infer request each); on 2 cores two overlapping requests gave
        #: 28 ms per 640 x 384 inference against 40 ms one at a time.
        self.concurrency = max(1, concurrency)
        self._pools: dict[tuple[int, int], queue.Queue] = {}
        self._compile_lock = threading.Lock()
        self._bins = np.arange(REG_MAX, dtype=np.float32)

    def _pool(self, input_h: int, input_w: int) -> queue.Queue:
        """The infer requests for a ``uint8 [1, input_h, input_w, 3]`` BGR input (compiled once per size; the
        requests are made together with the compiled model, never while another thread infers on it)."""
        key = (input_h, input_w)
        with self._compile_lock:
            pool = self._pools.get(key)
            if pool is None:
                import openvino as ov
                from openvino.preprocess import ColorFormat, PrePostProcessor

                model = self._model.clone()
                model.reshape([1, 3, input_h, input_w])
                ppp = PrePostProcessor(model)
                ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(
                    ColorFormat.BGR
                )
                ppp.input().model().set_layout(ov.Layout("NCHW"))
                ppp.input().preprocess().convert_element_type(ov.Type.f32).convert_color(ColorFormat.RGB).scale(255.0)
                with COMPILE_LOCK:
                    compiled = self._core.compile_model(ppp.build(), "CPU", {"PERFORMANCE_HINT": "LATENCY"})
                pool = queue.Queue()
                for _ in range(self.concurrency):
                    pool.put(compiled.create_infer_request())
                self._pools[key] = pool
        return pool

    def input_shape(self, height: int, width: int) -> tuple[int, int]:
        """``(input_h, input_w)`` pixels of the network input for a ``height`` x ``width`` frame."""
        return letterbox_geometry(height, width, self.image_size, self.square)[:2]

    def detect(self, images: Sequence[np.ndarray], confidence: float = 0.1):
        """Detect the people in each frame (one inference per frame; frames of one size share a compiled model).

        Args:
            images: ``uint8 [H, W, 3]`` BGR frames.
            confidence: minimum person score in ``[0, 1]``; a box is kept only when person is its best class, as
                Ultralytics' ``classes=[0]`` does.

        Returns:
            Per frame ``(xyxy float32 [N, 4], conf float32 [N], keypoints float32 [N, K, 3] or None)`` in frame
            pixels (keypoints ``(x, y, confidence)``, a pose head only), highest score first.
        """
        return [self._detect_one(image, confidence) for image in images]

    def _detect_one(self, image: np.ndarray, confidence: float):
        import cv2

        h, w = image.shape[:2]
        input_h, input_w, scale, (new_w, new_h), (left, top) = letterbox_geometry(h, w, self.image_size, self.square)
        resized = (
            image if (new_w, new_h) == (w, h) else cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        )
        padded = cv2.copyMakeBorder(
            resized,
            top,
            input_h - new_h - top,
            left,
            input_w - new_w - left,
            cv2.BORDER_CONSTANT,
            value=(LETTERBOX_GREY,) * 3,
        )
        xyxy, conf, kpts = self.detect_exact(padded, confidence)
        if len(conf):
            xyxy[:, [0, 2]] = np.clip((xyxy[:, [0, 2]] - left) / scale, 0, w)
            xyxy[:, [1, 3]] = np.clip((xyxy[:, [1, 3]] - top) / scale, 0, h)
            if kpts is not None:
                kpts[..., 0] = (kpts[..., 0] - left) / scale
                kpts[..., 1] = (kpts[..., 1] - top) / scale
        return xyxy, conf, kpts

    def detect_exact(self, image: np.ndarray, confidence: float = 0.25):
        """Run one image as the network input itself, without resizing (e.g. a mosaic of person crops).

        Args:
            image: ``uint8 [H, W, 3]`` BGR, ``H`` and ``W`` multiples of 32 pixels.
            confidence: minimum person score.

        Returns:
            ``(xyxy, conf, keypoints or None)`` in ``image`` pixels, as :meth:`detect`.

        Raises:
            ValueError: a side is not a multiple of 32.
        """
        h, w = image.shape[:2]
        if h % STRIDES[-1] or w % STRIDES[-1]:
            raise ValueError(f"network input {w} x {h} pixels: both sides must be multiples of {STRIDES[-1]}")
        pool = self._pool(h, w)
        request = pool.get()
        try:
            request.infer({0: np.ascontiguousarray(image)[None]})
            return self._decode(
                [request.get_output_tensor(i).data for i in range(len(request.model_outputs))], confidence
            )
        finally:
            pool.put(request)

    def _decode(self, outputs: list[np.ndarray], confidence: float):
        """Boxes, scores and keypoints (input pixels) of the people among the head's maps, after NMS."""
        import torch
        from torchvision.ops import nms

        threshold = (
            math.log(confidence / (1 - confidence))
            if 0 < confidence < 1
            else (-math.inf if confidence <= 0 else math.inf)
        )
        boxes, scores, keypoints = [], [], []
        for level, stride in enumerate(STRIDES):
            dist, logits = outputs[level][0], outputs[3 + level][0]
            gw = logits.shape[2]
            person = logits[0].reshape(-1)
            candidates = np.flatnonzero(person > threshold)
            if self._classes > 1 and len(candidates):
                flat = logits.reshape(self._classes, -1)[:, candidates]
                candidates = candidates[flat.argmax(0) == 0]  # person must be the best class
            if len(candidates) == 0:
                continue
            d = dist.reshape(4, REG_MAX, -1)[:, :, candidates]
            d = np.exp(d - d.max(1, keepdims=True))
            sides = (d * self._bins[None, :, None]).sum(1) / d.sum(1)  # [4, n]: left, top, right, bottom
            col, row = candidates % gw, candidates // gw
            ax, ay = col + 0.5, row + 0.5
            boxes.append(np.stack([ax - sides[0], ay - sides[1], ax + sides[2], ay + sides[3]], 1) * stride)
            scores.append(1 / (1 + np.exp(-person[candidates])))
            if self.keypoints:  # Ultralytics' Pose.kpts_decode: (2 * raw + cell corner) * stride, sigmoid visibility
                raw = outputs[6 + level][0].reshape(self.keypoints, 3, -1)[:, :, candidates]
                kx, ky = (raw[:, 0] * 2 + col) * stride, (raw[:, 1] * 2 + row) * stride
                keypoints.append(np.stack([kx, ky, 1 / (1 + np.exp(-raw[:, 2]))], -1).transpose(1, 0, 2))
        if not boxes:
            return (
                np.zeros((0, 4), np.float32),
                np.zeros(0, np.float32),
                np.zeros((0, self.keypoints, 3), np.float32) if self.keypoints else None,
            )
        xyxy = np.concatenate(boxes).astype(np.float32)
        conf = np.concatenate(scores).astype(np.float32)
        keep = nms(torch.from_numpy(xyxy), torch.from_numpy(conf), self.iou).numpy()[: self.max_det]
        kpts = np.concatenate(keypoints).astype(np.float32)[keep] if self.keypoints else None
        return xyxy[keep], conf[keep], kpts


def load_native_aspect(
    weights: str | Path, task: Optional[str], names: dict, image_size: int = 640, keypoints: int = 17
) -> Optional[NativeAspectDetector]:
    """A :class:`NativeAspectDetector` for an OpenVINO detection or pose export, or None when ``weights`` is
    anything else (a ``.pt`` file, another format or head), which Ultralytics then runs as it is."""
    path = Path(weights)
    if task not in ("detect", "pose") or not path.is_dir() or not any(path.glob("*.xml")):
        return None
    try:
        return NativeAspectDetector(
            path, classes=len(names) or 80, keypoints=keypoints if task == "pose" else 0, image_size=image_size
        )
    except ValueError:
        return None
