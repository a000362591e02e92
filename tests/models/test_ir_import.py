"""IR import: an OpenVINO re-id IR rebuilt op by op as a trainable torch module (parity with OpenVINO on real crops,
the stride-16 tap, unsupported ops named), the joint-loss network on it, and its export back to an IR."""

import glob

import cv2
import numpy as np
import pytest
import torch

from models.checkpoint import load_checkpoint, save_checkpoint
from models.configs import JointLossConfig
from models.encoders import JointLossEncoder, OnnxEncoder, OpenVinoEncoder, build_jointloss_encoder, load_encoder
from models.ir_export import export_ir
from models.ir_import import IRNetwork, UnsupportedIRError, import_ir
from models.jointloss import JointLossNet
from models.transforms import OPEN_MODEL_ZOO_BGR
from tests.conftest import SHARED, WEIGHTS, _require

VAL = SHARED / "data" / "reid" / "cuhk03" / "val"


def _ir(number: str):
    return _require(WEIGHTS / f"person-reidentification-retail-{number}")


def _crops(n: int = 12) -> list[np.ndarray]:
    files = sorted(glob.glob(str(_require(VAL) / "*.jpg")))[::37][:n]
    return [cv2.imread(f) for f in files]


def _batch(crops) -> np.ndarray:
    """Real crops as the IR takes them: ``float32 [N, 3, 256, 128]`` BGR 0-255."""
    return np.stack([cv2.resize(c, (128, 256)) for c in crops]).transpose(0, 3, 1, 2).astype(np.float32)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def _openvino_f32(xml_folder, tap: str | None = None):
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(next(xml_folder.glob("*.xml"))))
    if tap is not None:
        node = next(op for op in model.get_ordered_ops() if op.get_friendly_name() == tap)
        model.add_outputs([node.output(0)])
    model.reshape({model.inputs[0].any_name: ov.PartialShape([-1, 3, 256, 128])})
    return core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})


@pytest.mark.parametrize("number", ["0286", "0277"])
def test_imported_ir_matches_openvino_on_real_crops_and_at_the_tap(number):
    folder = _ir(number)
    net = import_ir(folder).eval()
    assert net.input_size == (256, 128) and net.dims == 256
    x = _batch(_crops())
    compiled = _openvino_f32(folder, net.tap_name)
    outputs = compiled({0: x})
    want, want_tap = (np.asarray(outputs[compiled.outputs[i]]) for i in (0, 1))
    with torch.no_grad():
        tap = net.trunk(torch.from_numpy(x))
        got = net.head(tap).numpy()
    assert want_tap.shape == tuple(tap.shape) == (len(x), net.tap_channels, 16, 8)  # stride 16
    assert _cosines(got, want).min() > 0.999
    assert _cosines(tap.numpy(), want_tap).min() > 0.999


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::FutureWarning")
def test_imported_ir_is_trainable_float32_with_frozen_preprocessing_and_a_dynamic_batch(tmp_path):
    net = import_ir(_ir("0286"))
    params = dict(net.named_parameters())
    buffers = dict(net.named_buffers())
    assert sum(p.numel() for p in params.values()) > 1_000_000
    assert all(p.dtype == torch.float32 and p.requires_grad for p in params.values())
    # the mean/std of the IR's input normalisation are buffers (not trained), the layers' weights parameters
    assert buffers and all(".pre_" in name or name.startswith("trunk.pre_") for name in buffers)
    x = torch.rand(3, 3, 256, 128) * 255
    net(x).pow(2).sum().backward()
    assert all(p.grad is not None for p in params.values())
    # rebuilt from its plain-value description (what a checkpoint keeps), without the IR file
    save_checkpoint(tmp_path / "net.pt", net.state_dict(), {"graph": net.spec()})
    state, meta = load_checkpoint(tmp_path / "net.pt")
    again = IRNetwork.from_spec(meta["graph"])
    again.load_state_dict(state)
    traced = torch.jit.trace(again.eval(), (x,), check_trace=False)
    y = torch.rand(5, 3, 256, 128) * 255
    with torch.no_grad():
        assert torch.allclose(traced(y), net.eval()(y), atol=1e-4)  # a batch of 5 through a trace made with 3


def test_an_unsupported_op_is_named(tmp_path):
    import openvino as ov
    import openvino.opset13 as ops

    image = ops.parameter([1, 3, 256, 128], np.float32, name="data")
    squashed = ops.tanh(image)
    pooled = ops.reduce_mean(squashed, np.array([2, 3], np.int64), keep_dims=False)
    ov.save_model(ov.Model([ops.result(pooled)], [image], "odd"), str(tmp_path / "odd.xml"))
    with pytest.raises(UnsupportedIRError, match="Tanh"):
        import_ir(tmp_path / "odd.xml")


def _omz_net(num_classes: int = 0) -> JointLossNet:
    config = JointLossConfig(backbone="osnet-omz-0286", global_dim=256, part_dim=64, num_classes=num_classes)
    return JointLossNet(config, pretrained_trunk=str(_ir("0286")))


def test_joint_loss_network_on_the_0286_trunk_starts_from_0286_and_freezes_its_early_stages():
    net = _omz_net(num_classes=5)
    assert net.preprocessing == OPEN_MODEL_ZOO_BGR and net.config.dims == 256 + 4 * 64
    assert [p["name"] for p in net.config.descriptor_layout()] == ["global", "head", "upper body", "lower body", "legs"]
    crops = _crops()
    ours = JointLossEncoder(net, "omz", "h", "s").encode(crops)
    reference = OpenVinoEncoder(_ir("0286"), preprocessing=OPEN_MODEL_ZOO_BGR)
    reference.compiled = _openvino_f32(_ir("0286"))
    reference.request = reference.compiled.create_infer_request()
    global_part = ours[:, :256] / np.linalg.norm(ours[:, :256], axis=1, keepdims=True)
    assert _cosines(global_part, reference.encode(crops)).min() > 0.999  # BNNeck starts as the identity
    trainable_before = sum(p.numel() for p in net.parameters() if p.requires_grad)
    frozen = net.freeze_early_layers()
    assert 0 < frozen < trainable_before
    assert all(p.requires_grad for p in net.part_convs.parameters())


def test_trained_network_exports_to_an_fp16_ir_that_openvino_runs_like_pytorch(tmp_path):
    net = _omz_net()
    save_checkpoint(
        tmp_path / "ckpt.pt",
        net.state_dict(),
        {"architecture": "jointloss", "config": net.config.to_dict(), "name": "omz-test", "clustering_threshold": 0.6},
    )
    encoder = build_jointloss_encoder(tmp_path / "ckpt.pt")  # rebuilt from the checkpoint alone
    report = export_ir(encoder.net, tmp_path / "omz.xml", "omz-test", 0.6, "abc")
    assert report.min_cosine > 0.999 and report.dims == 512 and report.size_bytes < 6_000_000
    exported = load_encoder(tmp_path / "omz.xml")
    assert isinstance(exported, OpenVinoEncoder) and exported.name == "omz-test"
    assert exported.clustering_threshold == 0.6 and exported.num_parts == 4
    assert exported.preprocessing == OPEN_MODEL_ZOO_BGR
    assert exported.descriptor_layout == net.config.descriptor_layout()
    crops = _crops()
    boxes = np.stack(
        [
            np.array(
                [[0, 0, w, 0.3 * h], [0, 0.2 * h, w, 0.6 * h], [0, 0.5 * h, w, 0.8 * h], [0, 0.7 * h, w, h]], np.float32
            )
            for h, w in (c.shape[:2] for c in crops)
        ]
    )
    assert _cosines(exported.encode(crops, boxes), encoder.encode(crops, boxes)).min() > 0.99


def test_onnx_export_of_the_bgr_network_records_its_preprocessing(tmp_path):
    from models.export import export_onnx

    net = _omz_net()
    export_onnx(net, tmp_path / "omz.onnx")
    onnx_encoder = OnnxEncoder(tmp_path / "omz.onnx")
    assert onnx_encoder.preprocessing == OPEN_MODEL_ZOO_BGR
    assert onnx_encoder.descriptor_layout == net.config.descriptor_layout()
    crops = _crops(6)
    assert _cosines(onnx_encoder.encode(crops), JointLossEncoder(net, "x", "h", "s").encode(crops)).min() > 0.999
