import numpy as np
import pytest
import torch

from common.errors import WeightsError
from models.checkpoint import load_checkpoint, save_checkpoint
from models.configs import JointLossConfig
from models.encoders import JointLossEncoder, build_jointloss_encoder, load_encoder
from models.jointloss import JointLossNet
from models.parts import fallback_stripes, stripe_boxes


def _crops(n, seed=0):
    rng = np.random.default_rng(seed)
    return [
        rng.integers(0, 255, (int(rng.integers(90, 300)), int(rng.integers(40, 120)), 3), dtype=np.uint8)
        for _ in range(n)
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    "config,dims",
    [
        (JointLossConfig(backbone="resnet18"), 512 + 4 * 128),
        (JointLossConfig(backbone="resnet18", use_parts=False, global_dim=256), 256),
        (JointLossConfig(backbone="resnet18", use_global=False, part_dim=64), 4 * 64),
        (JointLossConfig(backbone="resnet34", last_stride=2), 1024),
    ],
)
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


# (switches, descriptor dims, pre-BNNeck feature dims, number of classifiers)
ABLATIONS = [
    (dict(), 512 + 4 * 128, [512] + [128] * 4, 5),
    (dict(use_parts=False), 512, [512], 1),  # global only
    (dict(use_global=False), 4 * 128, [128] * 4, 4),  # local only
    (dict(loss_mode="concat"), 512 + 4 * 128, [512] + [128] * 4, 1),  # one loss over the concatenation
    (dict(num_parts=2), 512 + 2 * 128, [512] + [128] * 2, 3),
    (dict(num_parts=6, part_dim=64), 512 + 6 * 64, [512] + [64] * 6, 7),
    (dict(part_mode="stripes", num_parts=3), 512 + 3 * 128, [512] + [128] * 3, 4),  # horizontal stripes
    (dict(last_stride=2, global_dim=256), 256 + 4 * 128, [256] + [128] * 4, 5),
]


@pytest.mark.slow
@pytest.mark.parametrize("switches,dims,feature_dims,classifiers", ABLATIONS)
def test_every_ablation_switch_gives_the_documented_output_shapes(switches, dims, feature_dims, classifiers):
    torch.manual_seed(0)
    config = JointLossConfig(backbone="resnet18", num_classes=5, input_size=[128, 64], **switches)
    net = JointLossNet(config).train()
    boxes = torch.from_numpy(np.stack([stripe_boxes(128, 64, fallback_stripes(config.num_parts))] * 3))
    out = net(torch.randn(3, 3, 128, 64), boxes)
    assert config.dims == dims and out["descriptor"].shape == (3, dims)
    assert [f.shape[1] for f in out["features"]] == feature_dims
    assert len(out["logits"]) == classifiers and all(lg.shape == (3, 5) for lg in out["logits"])
    net.eval()
    with torch.no_grad():
        descriptor = net(torch.randn(2, 3, 128, 64))["descriptor"]  # no boxes: the fixed part boxes
    assert set(net(torch.randn(2, 3, 128, 64)).keys()) == {"descriptor"}
    torch.testing.assert_close(descriptor.norm(dim=1), torch.ones(2))


def test_stripes_mode_ignores_the_given_part_boxes():
    torch.manual_seed(0)
    net = JointLossNet(JointLossConfig(backbone="resnet18", use_global=False, part_mode="stripes")).eval()
    images = torch.randn(1, 3, 256, 128)
    top = torch.tensor([[[0, 0, 128, 64]] * 4], dtype=torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(net(images, top)["descriptor"], net(images)["descriptor"])


@pytest.mark.parametrize(
    "bad,match",
    [
        (dict(use_global=False, use_parts=False), "at least one"),
        (dict(num_parts=5), "pose-guided parts"),
        (dict(loss_mode="sum"), "loss_mode"),
        (dict(part_mode="grid"), "part_mode"),
        (dict(backbone="vgg16"), "backbone"),
    ],
)
def test_impossible_configurations_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        JointLossNet(JointLossConfig(**bad))


@pytest.mark.slow
def test_checkpoint_round_trip_gives_identical_embeddings(tmp_path):
    torch.manual_seed(1)
    config = JointLossConfig(backbone="resnet18")
    net = JointLossNet(config)
    path = tmp_path / "reid.pt"
    save_checkpoint(
        path,
        net.state_dict(),
        {
            "architecture": "jointloss",
            "config": config.to_dict(),
            "input_size": config.input_size,
            "dims": config.dims,
            "training_data": "none (random init)",
            "name": "jointloss-r18-test",
        },
    )
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
    with pytest.raises(WeightsError, match="set --reid to a trained re-id model"):
        build_jointloss_encoder(None, backbone="resnet18")


@pytest.mark.slow
def test_part_rois_stay_float32_under_bf16_autocast_so_image_indices_above_256_are_exact():
    torch.manual_seed(0)
    net = JointLossNet(
        JointLossConfig(backbone="resnet18", use_global=False, part_dim=16, input_size=[32, 16], part_mode="pose")
    ).eval()
    images = torch.randn(300, 3, 32, 16)
    boxes = (
        torch.tensor([[0, 0, 16, 10], [0, 7, 16, 19], [0, 15, 16, 25], [0, 22, 16, 32]], dtype=torch.float32)
        .expand(300, -1, -1)
        .contiguous()
    )
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        batch = net(images, boxes)["descriptor"]
        singles = torch.cat([net(images[i : i + 1], boxes[i : i + 1])["descriptor"] for i in (0, 255, 257, 299)])
    similarity = singles @ batch.t()  # [4, 300]
    for row, index in enumerate((0, 255, 257, 299)):
        assert int(similarity[row].argmax()) == index
        assert float(similarity[row, index]) > 0.98
