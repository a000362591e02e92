import cv2
import numpy as np
import pytest

from common.errors import DeviceError, WeightsError
from models.encoders import OnnxEncoder, load_encoder, preprocess, resolve_device


def test_preprocess_resizes_normalises_and_scales_part_boxes():
    crop = np.full((100, 50, 3), (0, 0, 255), np.uint8)  # pure red in BGR
    boxes = np.array([[[0, 0, 50, 25]]], np.float32)
    images, scaled = preprocess([crop], boxes, (256, 128))
    assert images.shape == (1, 3, 256, 128) and images.dtype == np.float32
    assert images[0, 0].mean() == pytest.approx((1 - 0.485) / 0.229, rel=1e-4)  # R channel first
    np.testing.assert_allclose(scaled[0, 0], [0, 0, 128, 64])


def test_onnx_encoder_on_real_crops_is_normalised_and_batch_invariant(osnet, lab_cam0):
    encoder = load_encoder(osnet, batch_size=2)
    assert isinstance(encoder, OnnxEncoder)
    assert encoder.dims == 512 and encoder.input_size == (256, 128)
    cap = cv2.VideoCapture(str(lab_cam0))
    ok, frame = cap.read()
    assert ok
    crops = [frame[50:280, 530:630], frame[30:240, 475:535], frame[450:720, 230:415]]
    out = encoder.encode(crops)
    assert out.shape == (3, 512) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(out[1], encoder.encode([crops[1]])[0], atol=1e-5)
    # a slightly shifted crop of the same person is closer than another person
    shifted = encoder.encode([frame[55:285, 532:632]])[0]
    assert shifted @ out[0] > out[2] @ out[0]


def test_bad_onnx_file_gives_a_clear_error(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not onnx at all")
    with pytest.raises(WeightsError, match="model.onnx could not be loaded"):
        load_encoder(bad)


def test_device_values_are_validated():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda:0")
    with pytest.raises(DeviceError, match="not valid"):
        resolve_device("gpu2")
    with pytest.raises(DeviceError):
        resolve_device("cuda:99")
