"""Backbone registry, MobileNetV2 ImageNet loading, distillation losses, teacher cache, multi-dataset readers."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from common.errors import DatasetError, WeightsError
from models.backbones import BACKBONES, MID_STRIDE, backbone_spec, find_imagenet_weights, map_state_dict_in_order
from models.configs import JointLossConfig, LossConfig
from models.datasets import combine_training_sets, load_dataset
from models.jointloss import JointLossNet
from models.losses import JointLoss, probabilistic_transfer, similarity_preserving
from models.teacher_cache import combine_teachers, teacher_cache_file, teacher_embeddings
from tests.conftest import SHARED, WEIGHTS

MOBILENET_IMAGENET = WEIGHTS / "imagenet" / "mobilenet_v2_imagenet_features.pt"
REID = SHARED / "data" / "reid"


IMAGENET_BACKBONES = sorted(n for n, spec in BACKBONES.items() if spec.preprocessing == "imagenet_rgb")
OMZ_BACKBONES = sorted(n for n, spec in BACKBONES.items() if spec.preprocessing == "bgr255")


@pytest.mark.parametrize("name", IMAGENET_BACKBONES)
@pytest.mark.parametrize("last_stride", [1, 2])
def test_every_backbone_gives_a_stride_16_trunk_map_and_the_announced_channels(name, last_stride):
    trunk = backbone_spec(name).build(last_stride, False)
    x = torch.randn(1, 3, 256, 128)
    with torch.no_grad():
        mid = trunk.trunk.eval()(x)
        top = trunk.top.eval()(mid)
    assert mid.shape == (1, trunk.mid_channels, 256 // MID_STRIDE, 128 // MID_STRIDE)
    top_stride = MID_STRIDE * (1 if last_stride == 1 else 2)
    assert top.shape == (1, trunk.top_channels, 256 // top_stride, 128 // top_stride)


@pytest.mark.parametrize("name", OMZ_BACKBONES)
def test_open_model_zoo_backbones_tap_stride_16_and_keep_their_own_embedding_head(name):
    spec = backbone_spec(name)
    with pytest.raises(WeightsError, match=spec.imagenet_file):  # nothing to start from without the IR
        spec.build(1, False)
    ir = find_imagenet_weights(name, [WEIGHTS])
    if ir is None:
        pytest.skip(f"{spec.imagenet_file} is absent from {WEIGHTS}")
    trunk = spec.build(1, str(ir))
    x = torch.rand(2, 3, 256, 128) * 255  # BGR 0-255: the IR normalises inside
    with torch.no_grad():
        mid = trunk.trunk(x)
        top = trunk.top(mid)
    assert mid.shape == (2, trunk.mid_channels, 256 // MID_STRIDE, 128 // MID_STRIDE)
    assert top.shape == (2, trunk.top_channels) and trunk.pooled_top and trunk.graph is not None
    assert (trunk.mid_channels, trunk.top_channels) == ({"osnet-omz-0286": 384, "osnet-omz-0277": 512}[name], 256)
    with pytest.raises(ValueError, match="256x128"):
        JointLossConfig(backbone=name, input_size=[192, 96]).validate()


def test_unknown_backbone_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="mobilenet_v2"):
        JointLossConfig(backbone="vgg16").validate()


def test_mobilenet_v2_imagenet_file_maps_key_by_key_and_gives_imagenet_features():
    if not MOBILENET_IMAGENET.exists():
        pytest.skip(f"{MOBILENET_IMAGENET} is absent: weights come from ../shared beside the repository")
    assert find_imagenet_weights("mobilenet_v2", [WEIGHTS]) == MOBILENET_IMAGENET
    assert find_imagenet_weights("resnet50", [WEIGHTS]) is None  # torchvision's download, not a local file
    source = torch.load(MOBILENET_IMAGENET, map_location="cpu", weights_only=True)
    net = JointLossNet(JointLossConfig(backbone="mobilenet_v2"), pretrained_trunk=str(MOBILENET_IMAGENET))
    loaded = list(net.trunk.state_dict().values()) + list(net.layer4.state_dict().values())
    assert len(loaded) == len(source) == 312
    for mine, theirs in zip(loaded, source.values()):
        assert torch.equal(mine, theirs.to(mine.dtype))
    random = JointLossNet(JointLossConfig(backbone="mobilenet_v2"))
    assert not torch.equal(next(iter(random.trunk.state_dict().values())), next(iter(source.values())))


def test_in_order_mapping_refuses_a_wrong_file():
    target = {"a": torch.zeros(2, 3), "b": torch.zeros(4)}
    with pytest.raises(WeightsError, match="holds 1 tensors"):
        map_state_dict_in_order({"x": torch.zeros(2, 3)}, target, "f.pt")
    with pytest.raises(WeightsError, match="shape"):
        map_state_dict_in_order({"x": torch.zeros(2, 3), "y": torch.zeros(5)}, target, "f.pt")
    with pytest.raises(WeightsError, match="local file"):
        JointLossNet(JointLossConfig(backbone="mobilenet_v2"), pretrained_trunk=True)


def test_freezing_the_stem_keeps_its_weights_and_batchnorm_statistics():
    torch.manual_seed(0)
    net = JointLossNet(
        JointLossConfig(backbone="mobilenet_v2", num_classes=4, input_size=[64, 32], global_dim=16, part_dim=8)
    )
    frozen = net.freeze_early_layers()
    assert frozen > 0
    net.train()
    stem = list(net.trunk.children())[0]
    before = {k: v.clone() for k, v in stem.state_dict().items()}
    head_before = net.global_head.embed.weight.clone()
    optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    out = net(torch.randn(8, 3, 64, 32))
    loss, _ = JointLoss()(out, torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
    loss.backward()
    optimizer.step()
    assert all(torch.equal(before[k], v) for k, v in stem.state_dict().items())
    assert not stem.training and not torch.equal(head_before, net.global_head.embed.weight)


def test_distillation_losses_against_hand_computed_values():
    student = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    teacher = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    # cosines: student s01 = 0, s02 = s12 = 1/sqrt2; teacher t01 = 1, t02 = t12 = 0; diagonals 1 and 1
    r = 1 / math.sqrt(2)
    expected_sp = (2 * (0 - 1) ** 2 + 4 * r**2) / 9
    assert float(similarity_preserving(student, teacher)) == pytest.approx(expected_sp, rel=1e-6)
    tau = 0.5
    s_cos = np.array([[1, 0, r], [0, 1, r], [r, r, 1]])
    t_cos = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1]])
    kl = 0.0
    for i in range(3):
        others = [j for j in range(3) if j != i]
        p_t = np.exp(t_cos[i, others] / tau) / np.exp(t_cos[i, others] / tau).sum()
        p_s = np.exp(s_cos[i, others] / tau) / np.exp(s_cos[i, others] / tau).sum()
        kl += (p_t * np.log(p_t / p_s)).sum() / 3
    assert float(probabilistic_transfer(student, teacher, tau)) == pytest.approx(kl, rel=1e-5)
    assert float(similarity_preserving(teacher, teacher)) == pytest.approx(0.0, abs=1e-7)


def test_joint_loss_adds_the_distillation_terms_with_their_weights():
    torch.manual_seed(0)
    descriptor = torch.nn.functional.normalize(torch.randn(6, 8), dim=1)
    outputs = {"descriptor": descriptor, "features": [descriptor], "logits": []}
    teacher = torch.randn(6, 5)
    targets = torch.tensor([0, 0, 1, 1, 2, 2])
    base, _ = JointLoss(LossConfig(triplet_weight=1.0))(outputs, targets)
    total, stats = JointLoss(LossConfig(triplet_weight=1.0, distill_weight=2.0, similarity_weight=10.0))(
        outputs, targets, teacher=teacher
    )
    expected = float(base) + 2.0 * (10.0 * stats["kd_sp"] + stats["kd_pkt"])
    assert float(total) == pytest.approx(expected, rel=1e-5) and stats["kd_pkt"] > 0


class _CountingEncoder:
    name, dims, checkpoint_hash = "fake-teacher", 3, "abcdef0123456789"

    def __init__(self):
        self.encoded = 0

    def encode(self, crops):
        self.encoded += len(crops)
        return np.stack([np.array([c.mean(), 1.0, 0.0], np.float32) / np.hypot(c.mean(), 1.0) for c in crops])


def test_teacher_cache_encodes_each_image_once_and_survives_a_new_process(tmp_path):
    import cv2

    paths = []
    for i in range(5):
        path = tmp_path / f"img{i}.png"
        cv2.imwrite(str(path), np.full((20, 10, 3), 10 * i, np.uint8))
        paths.append(path)
    cache = teacher_cache_file(tmp_path / "cache", "fake-teacher", _CountingEncoder.checkpoint_hash)
    assert cache.name == "teacher-fake-teacher-abcdef012345.npz"
    first = _CountingEncoder()
    vectors = teacher_embeddings(first, paths[:3], cache)
    assert first.encoded == 3 and cache.exists()
    second = _CountingEncoder()
    again = teacher_embeddings(second, paths, cache)
    assert second.encoded == 2  # only the two new images
    np.testing.assert_allclose(again[:3], vectors, atol=1e-3)  # stored as float16
    combined = combine_teachers([again, again[:, :2]])
    assert combined.shape == (5, 5)
    np.testing.assert_allclose(np.linalg.norm(combined, axis=1), 1.0, atol=1e-5)


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent: re-id images come from ../shared beside the repository")
    return path


def test_shared_cuhk_layouts_read_with_views_as_cameras_and_combine_without_clashing_ids():
    cuhk03 = load_dataset("cuhk03-views", _require(REID / "cuhk03"))
    assert [row[:3] for row in cuhk03.summary()] == [("train", 743, 7239), ("query", 100, 451), ("gallery", 100, 487)]
    assert {s.camid for s in cuhk03.query} == {0} and {s.camid for s in cuhk03.gallery} == {1}
    assert not {s.pid for s in cuhk03.train} & {s.pid for s in cuhk03.query}  # val ids are other people
    cuhk01 = load_dataset("cuhk01", _require(REID / "cuhk01"))
    assert (len({s.pid for s in cuhk01.query}), len(cuhk01.query), len(cuhk01.gallery)) == (971, 1942, 1942)
    combined = combine_training_sets([cuhk03, cuhk01])
    assert len(combined) == 7239 + 3884 and len({s.pid for s in combined}) == 743 + 971


def test_wrong_names_and_an_evaluation_set_without_train_split(tmp_path):
    import cv2

    (tmp_path / "bad").mkdir()
    cv2.imwrite(str(tmp_path / "bad" / "person.png"), np.zeros((8, 4, 3), np.uint8))
    with pytest.raises(DatasetError, match="0001001.png"):
        load_dataset("cuhk01", tmp_path / "bad")
    for split, pid, cam in (("query", 1, 0), ("query", 2, 0), ("gallery", 1, 1), ("gallery", 2, 1)):
        folder = tmp_path / "eval" / split / str(pid)
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{cam}_a.png"), np.full((16, 8, 3), pid * 50, np.uint8))
    data = load_dataset("generic", tmp_path / "eval", ("query", "gallery"))
    assert (len(data.train), len(data.query), len(data.gallery)) == (0, 2, 2)
    with pytest.raises(DatasetError):
        load_dataset("generic", tmp_path / "eval")  # training needs the train split
