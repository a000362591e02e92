"""Export of a trained joint-loss network to an OpenVINO IR (FP16 weights), checked against PyTorch.

The network (for an Open Model Zoo trunk: the imported IR graph of ``models.ir_import`` plus the part branches) is
converted by OpenVINO's PyTorch frontend (``openvino.convert_model`` on a trace with a dynamic batch) and saved with
FP16-compressed weights (``openvino.save_model(compress_to_fp16=True)``). Inputs: ``images`` (``uint8 [N, H, W, 3]``
BGR crops resized to the input size, as OpenCV holds them: the conversion to the network's pixel convention, float,
channel order and layout is built into the graph by OpenVINO's ``PrePostProcessor``, so no float copy is made on the
CPU before inference) and, with pose-guided parts, ``part_boxes`` (``float32 [N, P, 4]``, input pixels). Output:
``descriptor`` (``float32 [N, D]``, L2-normalised).

What the app needs to use the IR without the checkpoint travels in the IR's ``rt_info`` under ``reid_app``:
``name``, ``input`` (``uint8-nhwc-bgr``), ``preprocessing`` (JSON, what the graph does inside), ``descriptor_layout``
(JSON, ``JointLossConfig.descriptor_layout``),
``clustering_threshold`` (when known) and ``source_checkpoint`` (SHA-256 of the checkpoint it came from).
``models.encoders.OpenVinoEncoder`` reads them.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from common.errors import WeightsError
from models.encoders import IR_RT_INFO_SECTION
from models.export import _Descriptor, check_inputs
from models.jointloss import JointLossNet

#: ``rt_info`` ``input`` value of an IR that takes the resized crops as they are (``uint8 [N, H, W, 3]``, BGR).
UINT8_BGR_INPUT = "uint8-nhwc-bgr"


def _take_uint8_bgr(model, preprocessing):
    """Make the IR's ``images`` input ``uint8 [N, H, W, 3]`` BGR, with ``preprocessing`` (``x = (pixels[channels]
    * scale - mean) / std``) done inside the graph."""
    import openvino as ov
    from openvino.preprocess import PrePostProcessor

    ppp = PrePostProcessor(model)
    images = ppp.input(0)
    images.tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
    images.model().set_layout(ov.Layout("NCHW"))
    steps = images.preprocess().convert_element_type(ov.Type.f32)
    if preprocessing.channels == "RGB":
        steps.reverse_channels()
    scale = float(preprocessing.scale)
    mean = [m / scale for m in preprocessing.mean]
    std = [s / scale for s in preprocessing.std]
    if any(mean):
        steps.mean(mean)
    if any(v != 1.0 for v in std):
        steps.scale(std)
    return ppp.build()


@dataclass
class IRExportReport:
    """Outcome of :func:`export_ir`.

    Attributes:
        xml: the written ``.xml`` (its ``.bin`` beside it).
        size_bytes: ``.xml`` + ``.bin`` size.
        dims: descriptor length.
        min_cosine: smallest cosine between OpenVINO's (f32 inference of the FP16 weights) and PyTorch's descriptors
            over the check batch.
        check_batch: batch size of the check (differs from the traced batch: the batch is dynamic).
    """

    xml: Path
    size_bytes: int
    dims: int
    min_cosine: float
    check_batch: int


def export_ir(
    net: JointLossNet,
    xml: str | Path,
    name: str,
    clustering_threshold: Optional[float] = None,
    source_checkpoint: str = "",
    min_cosine: float = 0.999,
    check_batch: int = 3,
    seed: int = 0,
) -> IRExportReport:
    """Convert ``net`` to an OpenVINO IR with FP16 weights and check it against PyTorch.

    Args:
        net: the network (exported in eval mode, on the CPU).
        xml: destination ``.xml``; the ``.bin`` goes beside it. Written to temporary names first and renamed only
            when the check passes.
        name: the model name the app stores with every embedding.
        clustering_threshold: the identity-clustering threshold calibrated for this model, if any.
        source_checkpoint: SHA-256 of the checkpoint exported (recorded in ``rt_info``).
        min_cosine: smallest allowed cosine between OpenVINO's and PyTorch's descriptors of the same inputs.
        check_batch: batch size of the parity check.
        seed: seed of the random check inputs.

    Returns:
        An :class:`IRExportReport`.

    Raises:
        WeightsError: the conversion fails, or OpenVINO's output disagrees with PyTorch's.
    """
    import openvino as ov

    xml = Path(xml)
    net = net.cpu().eval()
    with_boxes = net.config.use_parts and net.config.part_mode == "pose"
    wrapper = _Descriptor(net, with_boxes).eval()
    generator = torch.Generator().manual_seed(seed)
    height, width = net.config.input_size
    shapes = [ov.PartialShape([-1, 3, height, width])]
    if with_boxes:
        shapes.append(ov.PartialShape([-1, net.config.num_parts, 4]))
    tmp_xml = xml.with_name(xml.stem + ".tmp.xml")
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            model = ov.convert_model(wrapper, example_input=check_inputs(net, 2, generator, with_boxes), input=shapes)
        for node, input_name in zip(model.inputs, ["images", "part_boxes"]):
            node.get_tensor().set_names({input_name})
        model.outputs[0].get_tensor().set_names({"descriptor"})
        model = _take_uint8_bgr(model, net.preprocessing)
        info = {
            "name": name,
            "input": UINT8_BGR_INPUT,
            "preprocessing": json.dumps(net.preprocessing.to_dict()),
            "descriptor_layout": json.dumps(net.config.descriptor_layout()),
            "source_checkpoint": source_checkpoint,
        }
        if clustering_threshold is not None:
            info["clustering_threshold"] = str(float(clustering_threshold))
        for key, value in info.items():
            model.set_rt_info(value, [IR_RT_INFO_SECTION, key])
        ov.save_model(model, str(tmp_xml), compress_to_fp16=True)
        compiled = ov.Core().compile_model(str(tmp_xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        pixels = torch.randint(0, 256, (check_batch, height, width, 3), generator=generator).numpy().astype(np.uint8)
        check = (
            torch.from_numpy(net.preprocessing.apply(pixels)),
            *check_inputs(net, check_batch, generator, with_boxes)[1:],
        )
        got = np.asarray(compiled({0: pixels, **({1: check[1].numpy()} if with_boxes else {})})[compiled.outputs[0]])
        with torch.inference_mode():
            want = wrapper(*check).numpy()
    except WeightsError:
        raise
    except Exception as exc:
        for f in (tmp_xml, tmp_xml.with_suffix(".bin")):
            f.unlink(missing_ok=True)
        raise WeightsError(f"OpenVINO IR export to {xml} failed ({type(exc).__name__}: {exc})") from exc
    cosines = (got * want).sum(1) / np.maximum(np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1), 1e-12)
    worst = float(cosines.min()) if got.shape == want.shape else float("nan")
    if not worst >= min_cosine:
        for f in (tmp_xml, tmp_xml.with_suffix(".bin")):
            f.unlink(missing_ok=True)
        raise WeightsError(
            f"the OpenVINO IR export disagrees with PyTorch (cosine {worst:.5f} < {min_cosine}); "
            f"nothing was written to {xml}"
        )
    tmp_xml.with_suffix(".bin").replace(xml.with_suffix(".bin"))
    tmp_xml.replace(xml)
    size = xml.stat().st_size + xml.with_suffix(".bin").stat().st_size
    return IRExportReport(xml, size, int(want.shape[1]), worst, check_batch)
