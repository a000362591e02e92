"""Re-id encoders: person crops (+ part boxes) -> L2-normalised ``float32 [N, D]`` embeddings.

Three backends behind :class:`ReIDEncoder`:
    * :class:`JointLossEncoder` - our joint-loss network (``models.jointloss``) from a reid-app checkpoint, or from
      its trunk's ImageNet weights when no re-id checkpoint is configured; GPU with autocast when present.
    * :class:`OnnxEncoder` - any ONNX re-id model ``[N, 3, H, W] -> [N, D]`` (RGB, ImageNet mean/std, the
      torchreid/BoxMOT export convention) through onnxruntime, including our own exports
      (``reid-app export``), which take a second input ``part_boxes [N, P, 4]``.
    * :class:`OpenVinoEncoder` - an OpenVINO IR re-id model (``.xml`` + ``.bin``, or their folder), e.g. Intel's
      person-reidentification-retail-0277/0286/0288, reshaped to a dynamic batch.
Each encoder carries its :class:`Preprocessing` (channel order, pixel scale, mean/std), fixed when the model is
loaded, never guessed per call. Use :func:`load_encoder` to pick the backend from the weights file.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np

from common.errors import DeviceError, WeightsError, setting
from models.ir_files import openvino_xml
from models.parts import fallback_stripes, parse_descriptor_layout, stripe_boxes
from models.transforms import IMAGENET_RGB, OPEN_MODEL_ZOO_BGR, Preprocessing  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)

#: Where reid-app's own exports record their metadata: ONNX metadata keys (``models.export``) and the OpenVINO IR
#: ``rt_info`` section (``models.ir_export``).
ONNX_PREPROCESSING_KEY = "reid_app.preprocessing"
ONNX_LAYOUT_KEY = "reid_app.descriptor_layout"
IR_RT_INFO_SECTION = "reid_app"


def resize_crops(
    crops: Sequence[np.ndarray], part_boxes: Optional[np.ndarray], size: tuple[int, int]
) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Resize crops to the network input and rescale their part boxes.

    Args:
        crops: ``N`` arrays ``uint8 [h_i, w_i, 3]``, BGR.
        part_boxes: ``float32 [N, P, 4]`` in each crop's pixels, or None.
        size: network input ``(height, width)`` in pixels.

    Returns:
        ``(images, boxes)``: ``uint8 [N, H, W, 3]`` BGR; part boxes in input pixels (``float32 [N, P, 4]``) or None.
    """
    height, width = size
    images = np.empty((len(crops), height, width, 3), dtype=np.uint8)
    boxes = None if part_boxes is None else np.array(part_boxes, dtype=np.float32, copy=True)
    for i, crop in enumerate(crops):
        h, w = crop.shape[:2]
        images[i] = cv2.resize(crop, (width, height), interpolation=cv2.INTER_LINEAR)
        if boxes is not None:
            boxes[i, :, [0, 2]] *= width / max(w, 1)
            boxes[i, :, [1, 3]] *= height / max(h, 1)
    return images, boxes


def preprocess(
    crops: Sequence[np.ndarray], part_boxes: Optional[np.ndarray], size: tuple[int, int]
) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """:func:`resize_crops` (same arguments), then :data:`IMAGENET_RGB` (BGR -> RGB, ImageNet normalisation).

    Returns:
        ``(images, boxes)``: ``float32 [N, 3, H, W]`` normalised RGB; part boxes in input pixels or None.
    """
    resized, boxes = resize_crops(crops, part_boxes, size)
    return IMAGENET_RGB.apply(resized), boxes


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norm, 1e-12)).astype(np.float32)


class ReIDEncoder(ABC):
    """Common interface of the re-id backends.

    Attributes:
        name: model name stored with every embedding (e.g. ``jointloss-resnet50``, ``osnet_x0_25_msmt17``).
        checkpoint_hash: SHA-256 of the weights (``imagenet-<backbone>`` for an untrained joint-loss network).
        source: where the weights came from (path), for the database's ``models.source``.
        dims: embedding length ``D``.
        input_size: ``(height, width)`` in pixels.
        device: where it runs (``cpu``, ``cuda:0``).
        num_parts: body-part boxes per crop the model takes (``P`` of ``part_boxes``; 4 when it ignores them).
        preprocessing: the model's pixel convention (:class:`Preprocessing`).
        clustering_threshold: the cosine average-linkage threshold for identities calibrated for this model (from
            its checkpoint's metadata), or None (the clustering default applies).
        descriptor_layout: ``[{"name", "start", "stop"}]``: the descriptor's column ranges per branch (``global``,
            then each body part; ``JointLossConfig.descriptor_layout``) for part-level match explanations, or None
            for a model whose descriptor is one piece.
    """

    name: str
    checkpoint_hash: str
    source: str
    dims: int
    input_size: tuple[int, int]
    device: str
    num_parts: int = 4
    preprocessing: Preprocessing = IMAGENET_RGB
    clustering_threshold: Optional[float] = None
    descriptor_layout: Optional[list] = None

    def __init__(self, batch_size: int = 64):
        self.batch_size = max(1, int(batch_size))
        # one call at a time: a tracker's appearance cue (camera threads) shares the encoder with the ingest's
        # encoding, and an inference request serves one call at once
        self._encode_lock = threading.Lock()

    def encode(self, crops: Sequence[np.ndarray], part_boxes: Optional[np.ndarray] = None) -> np.ndarray:
        """Embed person crops.

        Args:
            crops: ``N`` BGR ``uint8 [h, w, 3]`` crops (any size).
            part_boxes: ``float32 [N, P, 4]`` part boxes in crop pixels; None uses fixed stripes.

        Returns:
            ``float32 [N, D]``, each row of unit L2 norm (``[0, D]`` for no crops).
        """
        if len(crops) == 0:
            return np.zeros((0, self.dims), dtype=np.float32)
        out = []
        with self._encode_lock:
            for start in range(0, len(crops), self.batch_size):
                stop = start + self.batch_size
                out.append(
                    self._encode_batch(crops[start:stop], None if part_boxes is None else part_boxes[start:stop])
                )
        return _l2_normalise(np.concatenate(out, axis=0))

    def _encode_batch(self, crops: Sequence[np.ndarray], part_boxes: Optional[np.ndarray]) -> np.ndarray:
        """One batch of crops -> ``float32 [n, D]``; the default applies :attr:`preprocessing` on the CPU, then
        :meth:`_forward`."""
        resized, boxes = resize_crops(crops, part_boxes, self.input_size)
        return self._forward(self.preprocessing.apply(resized), boxes)

    @abstractmethod
    def _forward(self, images: np.ndarray, part_boxes: Optional[np.ndarray]) -> np.ndarray:
        """``float32 [n, 3, H, W]`` (+ ``[n, P, 4]``) -> ``float32 [n, D]`` (not necessarily normalised)."""


def resolve_device(spec: str) -> str:
    """Validate a ``--device`` value and turn ``auto`` into ``cuda:0`` or ``cpu``.

    Raises:
        DeviceError: malformed value, or CUDA asked for but not available.
    """
    import torch

    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if spec == "cpu":
        return "cpu"
    if spec == "cuda" or spec.startswith("cuda:"):
        index = 0
        if ":" in spec:
            try:
                index = int(spec.split(":", 1)[1])
            except ValueError:
                raise DeviceError(f"device '{spec}' is not valid; use auto, cpu, cuda or cuda:N") from None
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device '{spec}' requested but CUDA is not available on this machine; use {setting('device')} cpu"
            )
        if index >= torch.cuda.device_count():
            raise DeviceError(
                f"device '{spec}' does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
        return f"cuda:{index}"
    raise DeviceError(f"device '{spec}' is not valid; use auto, cpu, cuda or cuda:N")


class JointLossEncoder(ReIDEncoder):
    """Our joint-loss network (``models.jointloss.JointLossNet``) at inference.

    Args:
        net: the network (moved to ``device`` and set to eval mode here).
        name, checkpoint_hash, source: identity of the weights (see :class:`ReIDEncoder`).
        device: ``cpu`` or ``cuda:N``.
        batch_size: crops per forward pass.
        precision: ``fp32``, ``bf16`` or ``fp16`` (autocast); default bf16 on CUDA, fp32 on CPU.
        channels_last: NHWC memory format (faster convolutions on tensor cores); default on CUDA only.

    Raises:
        ValueError: unknown precision.
    """

    PRECISIONS = ("fp32", "bf16", "fp16")

    def __init__(
        self,
        net,
        name: str,
        checkpoint_hash: str,
        source: str,
        device: str = "cpu",
        batch_size: int = 64,
        precision: Optional[str] = None,
        channels_last: Optional[bool] = None,
    ):
        import torch

        super().__init__(batch_size)
        on_cuda = device.startswith("cuda")
        self.precision = precision or ("bf16" if on_cuda else "fp32")
        if self.precision not in self.PRECISIONS:
            raise ValueError(f"precision must be one of {self.PRECISIONS}, not {self.precision!r}")
        self.channels_last = on_cuda if channels_last is None else channels_last
        self.net = net.to(device).eval()
        self.device = device
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.name, self.checkpoint_hash, self.source = name, checkpoint_hash, source
        self.dims = net.config.dims
        self.descriptor_layout = net.config.descriptor_layout()
        self.input_size = tuple(net.config.input_size)
        self.num_parts = net.config.num_parts
        self.preprocessing = net.preprocessing
        self._scale = float(self.preprocessing.scale)
        self._mean = torch.tensor(self.preprocessing.mean, device=device).view(1, 3, 1, 1)
        self._std = torch.tensor(self.preprocessing.std, device=device).view(1, 3, 1, 1)

    def _encode_batch(self, crops: Sequence[np.ndarray], part_boxes: Optional[np.ndarray]) -> np.ndarray:
        """Resize on the CPU, then move ``uint8`` pixels (4x less than float) and apply :attr:`preprocessing` on
        the device."""
        import torch

        resized, boxes = resize_crops(crops, part_boxes, self.input_size)
        pixels = torch.from_numpy(resized).to(self.device, non_blocking=True)
        if self.preprocessing.channels == "RGB":
            pixels = pixels.flip(-1)
        x = pixels.permute(0, 3, 1, 2).float().mul_(self._scale)  # HWC -> CHW, scaled
        x = (x - self._mean) / self._std
        return self._run(x, boxes)

    def _forward(self, images: np.ndarray, part_boxes: Optional[np.ndarray]) -> np.ndarray:
        import torch

        return self._run(torch.from_numpy(images).to(self.device), part_boxes)

    def _run(self, x, part_boxes: Optional[np.ndarray]) -> np.ndarray:
        import torch

        boxes = (
            None
            if part_boxes is None
            else torch.from_numpy(np.ascontiguousarray(part_boxes, dtype=np.float32)).to(self.device)
        )
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        with (
            torch.inference_mode(),
            torch.autocast(self.device.split(":")[0], dtype=dtype or torch.float32, enabled=dtype is not None),
        ):
            out = self.net(x, boxes)["descriptor"]
        return out.float().cpu().numpy()


class OnnxEncoder(ReIDEncoder):
    """Any ONNX re-id model with input ``[N, 3, H, W]`` (RGB, ImageNet mean/std) and output ``[N, D]``.

    A model exported by ``reid-app export`` has a second input ``part_boxes`` (``float32 [N, P, 4]``, input
    pixels); it gets the crops' part boxes (fixed stripes when none are given).

    Args:
        path: the ``.onnx`` file.
        device: ``cpu`` or ``cuda:N`` (CUDA needs onnxruntime-gpu; otherwise the CPU provider is used).
        batch_size: crops per run (a model with a fixed batch dimension runs one crop at a time).

    Raises:
        WeightsError: the file is not a loadable ONNX model, or its input is not ``[N, 3, H, W]``.
    """

    def __init__(self, path: str | Path, device: str = "cpu", batch_size: int = 64):
        import onnxruntime as ort

        from models.checkpoint import file_sha256

        super().__init__(batch_size)
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            index = int(device.split(":")[1]) if ":" in device else 0
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": index}))
        try:
            self.session = ort.InferenceSession(str(path), providers=providers)
        except Exception as exc:
            raise WeightsError(
                f"ONNX re-id model {path} could not be loaded ({type(exc).__name__}); the file is "
                f"corrupt or not an ONNX model"
            ) from exc
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        shape = inputs[0].shape
        box_shape = inputs[1].shape if len(inputs) == 2 else None
        if (
            len(shape) != 4
            or shape[1] != 3
            or len(inputs) > 2
            or (box_shape is not None and (len(box_shape) != 3 or not isinstance(box_shape[1], int)))
        ):
            raise WeightsError(
                f"ONNX model {path} must take one input [N, 3, H, W] (or that and part boxes "
                f"[N, P, 4]); it takes {[(i.name, i.shape) for i in inputs]}"
            )
        height = shape[2] if isinstance(shape[2], int) else 256
        width = shape[3] if isinstance(shape[3], int) else 128
        self.input_size = (height, width)
        self.input_name = inputs[0].name
        self.boxes_name = inputs[1].name if box_shape is not None else None
        if box_shape is not None:
            self.num_parts = int(box_shape[1])
        self._default_boxes = stripe_boxes(height, width, fallback_stripes(self.num_parts))
        self.fixed_batch = shape[0] if isinstance(shape[0], int) else None
        out_shape = outputs[0].shape
        if all(isinstance(d, int) for d in out_shape[1:]):
            self.dims = int(np.prod(out_shape[1:]))  # [N, D, 1, 1] (global pooling kept) counts as [N, D]
        else:
            self.dims = int(self._run(np.zeros((1, 3, height, width), np.float32), None).shape[-1])
        self.name = Path(path).stem
        self.checkpoint_hash = file_sha256(path)
        self.source = str(Path(path).resolve())
        self.device = "cuda" if self.session.get_providers()[0].startswith("CUDA") else "cpu"
        self._read_metadata(path)

    def _read_metadata(self, path) -> None:
        """The preprocessing and descriptor layout ``reid-app export`` records (ImageNet RGB when absent)."""
        import json

        meta = self.session.get_modelmeta().custom_metadata_map
        try:
            if ONNX_PREPROCESSING_KEY in meta:
                self.preprocessing = Preprocessing.from_dict(json.loads(meta[ONNX_PREPROCESSING_KEY]))
            if ONNX_LAYOUT_KEY in meta:
                self.descriptor_layout = parse_descriptor_layout(meta[ONNX_LAYOUT_KEY])
        except (ValueError, TypeError, KeyError) as exc:
            raise WeightsError(
                f"ONNX model {path} carries malformed reid-app metadata ({type(exc).__name__}); "
                f"export it again with 'reid-app export'"
            ) from None

    def _run(self, images: np.ndarray, part_boxes: Optional[np.ndarray]) -> np.ndarray:
        feeds = {self.input_name: images}
        if self.boxes_name is not None:
            if part_boxes is None:
                part_boxes = np.broadcast_to(self._default_boxes, (images.shape[0], self.num_parts, 4))
            feeds[self.boxes_name] = np.ascontiguousarray(part_boxes, dtype=np.float32)
        return self.session.run(None, feeds)[0].reshape(images.shape[0], -1)

    def _forward(self, images: np.ndarray, part_boxes: Optional[np.ndarray]) -> np.ndarray:
        if self.fixed_batch is not None and self.fixed_batch != images.shape[0]:
            return np.concatenate(
                [
                    self._run(images[i : i + 1], None if part_boxes is None else part_boxes[i : i + 1])
                    for i in range(images.shape[0])
                ],
                axis=0,
            )
        return self._run(images, part_boxes)


#: Pixel conventions of known IR models by name prefix; an IR not listed is assumed to follow the Open Model Zoo's.
IR_PREPROCESSING = {"person-reidentification-retail-": OPEN_MODEL_ZOO_BGR}


class OpenVinoEncoder(ReIDEncoder):
    """An OpenVINO IR re-id model ``[N, 3, H, W] -> [N, D]`` (e.g. Intel's person-reidentification-retail-0286, or
    our own network exported by ``models.ir_export``, which also takes ``part_boxes [N, P, 4]``).

    The IR is reshaped to a dynamic batch and compiled once for the CPU. An IR of ours takes the resized crops as
    they are (``uint8 [N, H, W, 3]`` BGR; the pixel conversion is inside its graph); others take ``float32 [N, 3, H,
    W]`` prepared here. Its :class:`Preprocessing`, name,
    clustering threshold and descriptor layout come from the IR's ``rt_info`` (``reid_app`` section, written by
    ``models.ir_export``) when present; otherwise the preprocessing comes from :data:`IR_PREPROCESSING` (BGR 0-255,
    no mean/std for the Open Model Zoo models) and the name from the file.

    Args:
        path: the ``.xml`` file or the folder holding it (and its ``.bin``).
        device: ``cpu`` (``cuda:N`` also runs on the CPU: OpenVINO has no CUDA plugin).
        batch_size: crops per inference request.
        preprocessing: override the model's pixel convention.
        threads: CPU inference threads (None: OpenVINO's default, all cores).

    Raises:
        WeightsError: not an IR, unreadable, not ``[N, 3, H, W] (+ [N, P, 4]) -> [N, D]``, or malformed
            ``rt_info``.
    """

    def __init__(
        self,
        path: str | Path,
        device: str = "cpu",
        batch_size: int = 64,
        preprocessing: Optional[Preprocessing] = None,
        threads: Optional[int] = None,
    ):
        import openvino as ov

        from models.checkpoint import file_sha256

        super().__init__(batch_size)
        xml = openvino_xml(path)
        if xml is None:
            raise WeightsError(
                f"{path} is not an OpenVINO IR re-id model (expected a .xml file with its .bin, or "
                f"a folder holding one)"
            )
        core = ov.Core()
        try:
            model = core.read_model(str(xml))
        except Exception as exc:
            raise WeightsError(
                f"OpenVINO IR {xml} could not be read ({type(exc).__name__}); is it an IR .xml with its .bin beside it?"
            ) from exc
        shape = model.inputs[0].get_partial_shape()
        box_shape = model.inputs[1].get_partial_shape() if len(model.inputs) == 2 else None
        # our own exports take the resized crops as they are: uint8 [N, H, W, 3] BGR (models.ir_export)
        self.takes_uint8 = (
            model.inputs[0].get_element_type() == ov.Type.u8
            and shape.rank.get_length() == 4
            and shape[3].is_static
            and shape[3].get_length() == 3
        )
        if self.takes_uint8:
            shape = ov.PartialShape([shape[0], shape[3], shape[1], shape[2]])  # as NCHW for the checks below
        if (
            len(model.inputs) > 2
            or shape.rank.get_length() != 4
            or shape[1].get_length() != 3
            or len(model.outputs) != 1
            or (box_shape is not None and (box_shape.rank.get_length() != 3 or not box_shape[1].is_static))
        ):
            raise WeightsError(
                f"OpenVINO IR {xml} must take one input [N, 3, H, W] (or that and part boxes "
                f"[N, P, 4]) and give one output [N, D]; it takes "
                f"{[str(i.get_partial_shape()) for i in model.inputs]}"
            )
        height, width = shape[2].get_length(), shape[3].get_length()
        shapes = {
            model.inputs[0].any_name: ov.PartialShape(
                [-1, height, width, 3] if self.takes_uint8 else [-1, 3, height, width]
            )
        }
        if box_shape is not None:
            self.num_parts = box_shape[1].get_length()
            shapes[model.inputs[1].any_name] = ov.PartialShape([-1, self.num_parts, 4])
        model.reshape(shapes)
        info = self._read_rt_info(model, xml)
        config = {"INFERENCE_NUM_THREADS": int(threads)} if threads else {}
        self.compiled = core.compile_model(model, "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.input_size = (height, width)
        self.with_boxes = box_shape is not None
        self._default_boxes = stripe_boxes(height, width, fallback_stripes(self.num_parts))
        self.dims = int(model.outputs[0].get_partial_shape()[-1].get_length())
        self.name = info.get("name") or xml.stem
        self.preprocessing = (
            preprocessing
            or info.get("preprocessing")
            or next((p for prefix, p in IR_PREPROCESSING.items() if self.name.startswith(prefix)), OPEN_MODEL_ZOO_BGR)
        )
        self.clustering_threshold = info.get("clustering_threshold")
        self.descriptor_layout = info.get("descriptor_layout")
        # the same hash whether the user named the folder or the .xml: the topology and its weights
        bin_file = xml.with_suffix(".bin")
        self.checkpoint_hash = hashlib.sha256(
            (file_sha256(xml) + (file_sha256(bin_file) if bin_file.exists() else "")).encode()
        ).hexdigest()
        self.source = str(xml.resolve())
        self.device = "cpu"

    @staticmethod
    def _read_rt_info(model, xml: Path) -> dict:
        """reid-app's metadata of an IR exported by ``models.ir_export`` (empty for other IRs)."""
        import json

        def text(key: str) -> Optional[str]:
            if not model.has_rt_info([IR_RT_INFO_SECTION, key]):
                return None
            return str(model.get_rt_info([IR_RT_INFO_SECTION, key]).astype(str))

        info: dict = {}
        try:
            if text("name"):
                info["name"] = text("name")
            if text("preprocessing"):
                info["preprocessing"] = Preprocessing.from_dict(json.loads(text("preprocessing")))
            if text("clustering_threshold"):
                info["clustering_threshold"] = float(text("clustering_threshold"))
            if text("descriptor_layout"):
                info["descriptor_layout"] = parse_descriptor_layout(text("descriptor_layout"))
        except (ValueError, TypeError, KeyError) as exc:
            raise WeightsError(
                f"OpenVINO IR {xml} carries malformed reid-app metadata ({type(exc).__name__}: "
                f"{exc}); export it again with 'reid-app export --ir'"
            ) from None
        return info

    def _encode_batch(self, crops: Sequence[np.ndarray], part_boxes: Optional[np.ndarray]) -> np.ndarray:
        if not self.takes_uint8:
            return super()._encode_batch(crops, part_boxes)
        resized, boxes = resize_crops(crops, part_boxes, self.input_size)  # the graph converts the pixels itself
        return self._forward(resized, boxes)

    def _forward(self, images: np.ndarray, part_boxes: Optional[np.ndarray]) -> np.ndarray:
        feeds = {0: images}
        if self.with_boxes:
            if part_boxes is None:
                part_boxes = np.broadcast_to(self._default_boxes, (images.shape[0], self.num_parts, 4))
            feeds[1] = np.ascontiguousarray(part_boxes, dtype=np.float32)
        result = self.request.infer(feeds)
        return np.asarray(result[self.compiled.outputs[0]], np.float32).reshape(images.shape[0], -1)


def build_jointloss_encoder(
    checkpoint: Optional[str | Path], device: str = "cpu", batch_size: int = 64, backbone: str = "resnet50"
) -> JointLossEncoder:
    """A joint-loss encoder from a reid-app checkpoint, or from ImageNet trunk weights when ``checkpoint`` is None.

    Raises:
        WeightsError: unreadable checkpoint, mismatching weights, or ImageNet weights unavailable offline.
    """
    from models.checkpoint import file_sha256, load_checkpoint
    from models.configs import JointLossConfig
    from models.jointloss import JointLossNet

    if checkpoint is None:
        log.warning(
            "the joint-loss re-id network is not re-id-trained (ImageNet trunk only): matches will be "
            "poor; pass --reid PATH to a trained checkpoint or an ONNX re-id model"
        )
        config = JointLossConfig(backbone=backbone)
        net = JointLossNet(config, pretrained_trunk=True)
        return JointLossEncoder(
            net, f"jointloss-{backbone}", f"imagenet-{backbone}", "torchvision-imagenet", device, batch_size
        )
    state_dict, metadata = load_checkpoint(checkpoint)
    try:
        config = JointLossConfig.from_dict(metadata.get("config", {}))
        net = JointLossNet(config, pretrained_trunk=False)
        net.load_state_dict(state_dict, strict=False)
        missing = [k for k in net.state_dict() if k not in state_dict and "classifier" not in k]
        if missing:
            raise ValueError(f"missing {len(missing)} tensors such as {missing[0]}")
    except (ValueError, RuntimeError, TypeError) as exc:
        raise WeightsError(f"re-id checkpoint {checkpoint} does not match the joint-loss network: {exc}") from exc
    name = metadata.get("name") or f"jointloss-{config.backbone}"
    encoder = JointLossEncoder(net, name, file_sha256(checkpoint), str(Path(checkpoint).resolve()), device, batch_size)
    threshold = metadata.get("clustering_threshold")
    encoder.clustering_threshold = None if threshold is None else float(threshold)
    return encoder


def load_encoder(weights: Optional[str | Path], device: str = "cpu", batch_size: int = 64) -> ReIDEncoder:
    """Pick the backend from the weights: ``.onnx`` -> :class:`OnnxEncoder`, an OpenVINO IR (``.xml`` or its
    folder) -> :class:`OpenVinoEncoder`, otherwise a reid-app checkpoint; None -> the shipped default model's IR
    (``models.default_model``).

    Raises:
        WeightsError: see the backends.
    """
    if weights is None:
        from models.default_model import default_model_ir

        weights = default_model_ir()
    if Path(weights).suffix.lower() == ".onnx":
        encoder = OnnxEncoder(weights, device, batch_size)
    elif openvino_xml(weights) is not None:
        encoder = OpenVinoEncoder(weights, device, batch_size)
    else:
        encoder = build_jointloss_encoder(weights, device, batch_size)
    check_encoder(encoder, weights)
    return encoder


#: Largest re-id input side accepted (pixels); re-id models take person crops of a few hundred pixels.
MAX_INPUT_SIDE = 1024


def check_encoder(encoder: ReIDEncoder, weights: str | Path = "") -> None:
    """Sanity check of a loaded re-id model on a probe batch (a noise crop and a grey crop): the input size is
    plausible, the output is ``[2, dims]`` as declared, every value finite, and no embedding (near) zero.

    Raises:
        WeightsError: the model fails one of these; the message names the file and what is wrong.
    """
    name = weights or encoder.name
    height, width = encoder.input_size
    if not (8 <= height <= MAX_INPUT_SIDE and 8 <= width <= MAX_INPUT_SIDE):
        raise WeightsError(
            f"re-id model {name} takes {height}x{width} pixel inputs; a re-id model takes person "
            f"crops of 8 to {MAX_INPUT_SIDE} pixels a side"
        )
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8), np.full((height, width, 3), 128, np.uint8)]
    try:
        raw = np.asarray(encoder._encode_batch(crops, None))
    except (MemoryError, RuntimeError, ValueError) as exc:
        raise WeightsError(
            f"re-id model {name} failed on a test batch ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200] if str(exc) else ''})"
        ) from None
    if raw.shape != (2, encoder.dims):
        raise WeightsError(
            f"re-id model {name} gave embeddings of shape {list(raw.shape)} for 2 crops; expected "
            f"[2, {encoder.dims}] ([N, D])"
        )
    if not np.all(np.isfinite(raw)):
        raise WeightsError(f"re-id model {name} gives NaN or infinite embeddings; the weights are broken")
    if np.any(np.linalg.norm(raw, axis=1) < 1e-6):
        raise WeightsError(f"re-id model {name} gives all-zero embeddings; the weights are broken")
