import numpy as np
import pytest
import torch

from models.checkpoint import load_checkpoint, save_checkpoint
from models.encoders import JointLossEncoder, build_jointloss_encoder, load_encoder
from models.jointloss import JointLossConfig, JointLossNet
from models.parts import stripe_boxes
from reid_app.errors import WeightsError


def _crops(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (int(rng.integers(90, 300)), int(rng.integers(40, 120)), 3), dtype=np.uint8)
            for _ in range(n)]


@pytest.mark.parametrize("config,dims", [
    (JointLossConfig(backbone="resnet18"), 512 + 4 * 128),
    (JointLossConfig(backbone="resnet18", use_parts=False, global_dim=256), 256),
    (JointLossConfig(backbone="resnet18", use_global=False, part_dim=64), 4 * 64),
    (JointLossConfig(backbone="resnet34", last_stride=2), 1024),
])
def test_encoder_outputs_unit_norm_float32_of_the_configured_dims(config, dims):
    torch.manual_seed(0)
    encoder = JointLossEncoder(JointLossNet(config), "jointloss-test", "random", "test", batch_size=2)
    crops = _crops(5)
    boxes = np.stack([stripe_boxes(c.shape[0], c.shape[1]) for c in crops])
    out = encoder.encode(crops, boxes)
    assert out.shape == (5, dims) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    # batching does not change results (eval mode: BatchNorm uses running statistics)
    single = np.concatenate([encoder.encode([c], b[None]) for c, b in zip(crops, boxes)])
    np.testing.assert_allclose(out, single, atol=1e-5)
    assert encoder.encode([]).shape == (0, dims)


def test_part_boxes_change_the_part_features():
    torch.manual_seed(0)
    net = JointLossNet(JointLossConfig(backbone="resnet18", use_global=False)).eval()
    images = torch.randn(1, 3, 256, 128)
    top = torch.tensor([[[0, 0, 128, 64]] * 4], dtype=torch.float32)
    bottom = torch.tensor([[[0, 192, 128, 256]] * 4], dtype=torch.float32)
    with torch.no_grad():
        a, b = net(images, top)["descriptor"], net(images, bottom)["descriptor"]
    assert not torch.allclose(a, b, atol=1e-3)


def test_training_mode_returns_per_branch_features_and_logits():
    net = JointLossNet(JointLossConfig(backbone="resnet18", num_classes=7)).train()
    out = net(torch.randn(2, 3, 256, 128), torch.from_numpy(np.stack([stripe_boxes(256, 128)] * 2)))
    assert len(out["features"]) == 5 and len(out["logits"]) == 5
    assert out["logits"][0].shape == (2, 7) and out["features"][1].shape == (2, 128)


def test_checkpoint_round_trip_gives_identical_embeddings(tmp_path):
    torch.manual_seed(1)
    config = JointLossConfig(backbone="resnet18")
    net = JointLossNet(config)
    path = tmp_path / "reid.pt"
    save_checkpoint(path, net.state_dict(), {"architecture": "jointloss", "config": config.to_dict(),
                                             "input_size": config.input_size, "dims": config.dims,
                                             "training_data": "none (random init)", "name": "jointloss-r18-test"})
    state, meta = load_checkpoint(path)
    assert meta["dims"] == 1024 and set(state) == set(net.state_dict())
    loaded = load_encoder(path)
    assert loaded.name == "jointloss-r18-test" and len(loaded.checkpoint_hash) == 64
    direct = JointLossEncoder(net, "x", "y", "z")
    crops = _crops(3, seed=4)
    np.testing.assert_allclose(loaded.encode(crops), direct.encode(crops), atol=1e-5)


def test_corrupt_or_foreign_checkpoints_give_clear_errors(tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(WeightsError, match="corrupt.pt could not be read"):
        load_encoder(corrupt)
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": torch.zeros(3)}, foreign)
    with pytest.raises(WeightsError, match="not a reid-app checkpoint"):
        load_encoder(foreign)
    mismatch = tmp_path / "mismatch.pt"
    save_checkpoint(mismatch, {"w": torch.zeros(1)}, {"config": JointLossConfig(backbone="resnet18").to_dict()})
    with pytest.raises(WeightsError, match="does not match"):
        load_encoder(mismatch)


def test_without_weights_offline_the_imagenet_trunk_error_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(WeightsError, match="--reid PATH"):
        build_jointloss_encoder(None, backbone="resnet18")
