"""ONNX export of a joint-loss checkpoint, checked against PyTorch.

The exported graph takes ``images`` (``float32 [N, 3, H, W]`` in the network's pixel convention: RGB with ImageNet
mean/std, or BGR 0-255 for an imported Open Model Zoo trunk, recorded in the file's metadata as
``reid_app.preprocessing``) and, for pose-guided part branches, ``part_boxes`` (``float32 [N, P, 4]`` in input
pixels); it returns ``descriptor`` (``float32 [N, D]``, L2-normalised). The batch dimension is dynamic. The
descriptor's layout (``JointLossConfig.descriptor_layout``) is recorded as ``reid_app.descriptor_layout``.
``models.encoders.OnnxEncoder`` runs it (``reid-app ingest --reid
model.onnx``, ``reid-app evaluate --weights model.onnx``).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from common.errors import WeightsError
from models.encoders import ONNX_LAYOUT_KEY, ONNX_PREPROCESSING_KEY
from models.jointloss import JointLossNet


class _Descriptor(nn.Module):
    def __init__(self, net: JointLossNet, with_boxes: bool):
        super().__init__()
        self.net, self.with_boxes = net, with_boxes

    def forward(self, images: torch.Tensor, part_boxes: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(images, part_boxes if self.with_boxes else None)["descriptor"]


@dataclass
class ExportReport:
    """Outcome of :func:`export_onnx`.

    Attributes:
        path: the written ``.onnx`` file.
        inputs: input names.
        dims: descriptor length.
        max_abs_difference: largest ``|onnx - pytorch|`` over the check batch.
        check_batch: batch size of the check (differs from the traced batch, proving the dynamic dimension).
    """

    path: Path
    inputs: list[str]
    dims: int
    max_abs_difference: float
    check_batch: int


def _record_metadata(path: Path, net: JointLossNet) -> None:
    import onnx

    model = onnx.load(str(path))
    onnx.helper.set_model_props(
        model,
        {
            ONNX_PREPROCESSING_KEY: json.dumps(net.preprocessing.to_dict()),
            ONNX_LAYOUT_KEY: json.dumps(net.config.descriptor_layout()),
        },
    )
    onnx.save(model, str(path))


def check_inputs(net: JointLossNet, n: int, generator: torch.Generator, with_boxes: bool) -> tuple:
    """Random inputs of an export's parity check: ``n`` noise images (0-255 pixels in the network's convention,
    ``float32 [n, 3, H, W]``) and, ``with_boxes``, the fixed part boxes jittered down by up to 10% of the height
    (``float32 [n, P, 4]``)."""
    height, width = net.config.input_size
    pixels = torch.randint(0, 256, (n, height, width, 3), generator=generator).numpy().astype(np.uint8)
    images = torch.from_numpy(net.preprocessing.apply(pixels))
    if not with_boxes:
        return (images,)
    boxes = net.fixed_boxes.expand(n, -1, -1).clone()
    jitter = torch.rand(n, boxes.shape[1], 1, generator=generator) * 0.1 * height
    boxes[..., 1:2] += jitter
    boxes[..., 3:4] = torch.minimum(boxes[..., 3:4] + jitter, torch.tensor(float(height)))
    return images, boxes


def export_onnx(
    net: JointLossNet, out: str | Path, opset: int = 17, tolerance: float = 1e-4, check_batch: int = 3, seed: int = 0
) -> ExportReport:
    """Export ``net`` to ONNX with a dynamic batch and check onnxruntime against PyTorch on random inputs.

    Args:
        net: the network (any mode; exported in eval mode).
        out: destination ``.onnx`` file; written atomically, only when the check passes.
        opset: ONNX opset (RoiAlign with pixel-aligned sampling needs >= 16).
        tolerance: largest allowed absolute difference of the L2-normalised descriptors.
        check_batch: batch size of the parity check.
        seed: seed of the random check inputs.

    Returns:
        An :class:`ExportReport`.

    Raises:
        WeightsError: the export fails or its output disagrees with PyTorch beyond ``tolerance``.
    """
    import onnxruntime as ort

    out = Path(out)
    net = net.cpu().eval()
    with_boxes = net.config.use_parts and net.config.part_mode == "pose"
    wrapper = _Descriptor(net, with_boxes).eval()
    generator = torch.Generator().manual_seed(seed)

    def inputs(n: int) -> tuple[torch.Tensor, ...]:
        return check_inputs(net, n, generator, with_boxes)

    names = ["images", "part_boxes"] if with_boxes else ["images"]
    axes = {name: {0: "batch"} for name in names + ["descriptor"]}
    tmp = out.with_name(out.name + ".tmp")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper,
                inputs(2),
                str(tmp),
                input_names=names,
                output_names=["descriptor"],
                dynamic_axes=axes,
                opset_version=opset,
                dynamo=False,
            )
        _record_metadata(tmp, net)
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        check = inputs(check_batch)
        got = session.run(None, {n: t.numpy() for n, t in zip(names, check)})[0]
        with torch.inference_mode():
            want = wrapper(*check).numpy()
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise WeightsError(f"ONNX export to {out} failed ({type(exc).__name__}: {exc})") from exc
    difference = float(np.abs(got - want).max())
    if got.shape != want.shape or not difference <= tolerance:
        tmp.unlink(missing_ok=True)
        raise WeightsError(
            f"the ONNX export disagrees with PyTorch (max |difference| {difference:.2e} > "
            f"{tolerance:.0e}); nothing was written to {out}"
        )
    tmp.replace(out)
    return ExportReport(out, names, int(want.shape[1]), difference, check_batch)
