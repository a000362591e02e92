import numpy as np
import pytest
import torch

from common.errors import WeightsError
from models.configs import JointLossConfig
from models.encoders import JointLossEncoder, OnnxEncoder
from models.export import export_onnx
from models.jointloss import JointLossNet
from models.parts import part_boxes_from_keypoints


def _net(**switches):
    torch.manual_seed(0)
    return JointLossNet(
        JointLossConfig(backbone="resnet18", input_size=[128, 64], global_dim=64, part_dim=32, **switches)
    ).eval()


def _crops_and_boxes(n=5):
    rng = np.random.default_rng(0)
    crops = [
        rng.integers(0, 255, (int(rng.integers(100, 220)), int(rng.integers(40, 90)), 3), dtype=np.uint8)
        for _ in range(n)
    ]
    boxes = []
    for crop in crops:
        h, w = crop.shape[:2]
        kp = np.zeros((17, 3), np.float32)
        for i, frac in enumerate(
            [0.08, 0.06, 0.06, 0.07, 0.07, 0.2, 0.2, 0.35, 0.35, 0.45, 0.45, 0.5, 0.5, 0.72, 0.72, 0.93, 0.93]
        ):
            kp[i] = (w * (0.35 if i % 2 else 0.65), h * frac, 0.9)
        boxes.append(part_boxes_from_keypoints(kp, h, w)[0])
    return crops, np.stack(boxes)


@pytest.mark.slow
def test_exported_model_has_a_dynamic_batch_and_matches_pytorch_on_pose_guided_parts(tmp_path):
    net = _net()
    report = export_onnx(net, tmp_path / "m.onnx")
    assert report.inputs == ["images", "part_boxes"] and report.dims == 64 + 4 * 32
    assert report.max_abs_difference < 1e-4 and not (tmp_path / "m.onnx.tmp").exists()
    onnx_encoder = OnnxEncoder(tmp_path / "m.onnx", batch_size=4)
    assert onnx_encoder.num_parts == 4 and onnx_encoder.input_size == (128, 64) and onnx_encoder.dims == 192
    torch_encoder = JointLossEncoder(net, "m", "h", "s")
    crops, boxes = _crops_and_boxes()
    np.testing.assert_allclose(onnx_encoder.encode(crops, boxes), torch_encoder.encode(crops, boxes), atol=1e-4)
    # the part boxes reach the ONNX graph: other boxes, other descriptors
    shifted = boxes.copy()
    shifted[:, :, [1, 3]] *= 0.5
    assert not np.allclose(onnx_encoder.encode(crops, shifted), onnx_encoder.encode(crops, boxes), atol=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("switches", [dict(use_parts=False), dict(part_mode="stripes")])
def test_models_without_pose_guided_parts_export_a_single_input(tmp_path, switches):
    report = export_onnx(_net(**switches), tmp_path / "m.onnx")
    assert report.inputs == ["images"]
    crops, _ = _crops_and_boxes(3)
    np.testing.assert_allclose(
        OnnxEncoder(tmp_path / "m.onnx").encode(crops),
        JointLossEncoder(_net(**switches), "m", "h", "s").encode(crops),
        atol=1e-4,
    )


@pytest.mark.slow
def test_a_failed_parity_check_writes_nothing(tmp_path):
    with pytest.raises(WeightsError, match="disagrees"):
        export_onnx(_net(), tmp_path / "m.onnx", tolerance=0.0)
    assert not list(tmp_path.iterdir())
