import math

import pytest
import torch

from models.configs import JointLossConfig, LossConfig
from models.jointloss import JointLossNet
from models.losses import JointLoss, batch_hard_triplet, cross_entropy_label_smoothing, group_sparsity


def test_label_smoothed_cross_entropy_matches_the_hand_computed_value():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    targets = torch.tensor([0, 2])
    eps, c = 0.1, 3

    def by_hand(row, target):
        z = sum(math.exp(v) for v in row)
        log_p = [v - math.log(z) for v in row]
        return -sum(((1 - eps + eps / c) if i == target else eps / c) * lp for i, lp in enumerate(log_p))

    expected = (by_hand([2, 0, 0], 0) + by_hand([0, 1, 0], 2)) / 2
    assert cross_entropy_label_smoothing(logits, targets, eps).item() == pytest.approx(expected, rel=1e-6)
    # epsilon 0 is plain cross-entropy
    assert cross_entropy_label_smoothing(logits, targets, 0.0).item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits, targets).item(), rel=1e-6
    )


def test_batch_hard_triplet_matches_the_hand_computed_value():
    # 1-D features: identity 0 at 0 and 1, identity 1 at 3 and 5.
    x = torch.tensor([[0.0], [1.0], [3.0], [5.0]])
    y = torch.tensor([0, 0, 1, 1])
    # anchors: (d_ap, d_an) = (1, 3), (1, 2), (2, 2), (2, 4)
    loss, ok = batch_hard_triplet(x, y, margin=0.3)
    assert loss.item() == pytest.approx((0 + 0 + 0.3 + 0) / 4, abs=1e-5)
    assert ok.item() == pytest.approx(0.75)
    soft, _ = batch_hard_triplet(x, y, margin=None)
    expected = sum(math.log1p(math.exp(d)) for d in (-2, -1, 0, -2)) / 4
    assert soft.item() == pytest.approx(expected, rel=1e-5)


def test_batch_hard_triplet_without_positives_is_zero_and_differentiable():
    x = torch.randn(3, 4, requires_grad=True)
    loss, _ = batch_hard_triplet(x, torch.tensor([0, 1, 2]))
    loss.backward()
    assert loss.item() == 0.0 and x.grad is not None


def test_group_sparsity_sums_column_norms_of_each_branch():
    w1 = torch.tensor([[3.0, 0.0], [4.0, 1.0]])  # column norms 5 and 1
    w2 = torch.tensor([[0.0, 2.0, 0.0]])  # 0, 2, 0
    assert group_sparsity([w1, w2]).item() == pytest.approx(8.0)


def test_joint_loss_weights_each_term_and_reports_accuracy():
    torch.manual_seed(0)
    net = JointLossNet(
        JointLossConfig(backbone="resnet18", num_classes=3, global_dim=32, part_dim=8, input_size=[64, 32])
    ).train()
    images, targets = torch.randn(6, 3, 64, 32), torch.tensor([0, 0, 1, 1, 2, 2])
    out = net(images)
    config = LossConfig(id_weight=0.5, triplet_weight=1.0, sparsity_weight=1e-3)
    total, stats = JointLoss(config)(out, targets, net.embedding_weights())
    ids = torch.stack([cross_entropy_label_smoothing(lg, targets, 0.1) for lg in out["logits"]]).mean()
    tri, _ = batch_hard_triplet(torch.cat(out["features"], 1), targets, 0.3)
    sparsity = group_sparsity(net.embedding_weights())
    assert total.item() == pytest.approx((0.5 * ids + tri + 1e-3 * sparsity).item(), rel=1e-4)
    assert stats["id"] == pytest.approx(ids.item(), rel=1e-5) and 0.0 <= stats["accuracy"] <= 1.0
    total.backward()
    assert net.global_head.classifier.weight.grad is not None
    # switching terms off removes them
    no_triplet, stats = JointLoss(LossConfig(triplet_weight=0.0))(net(images), targets)
    assert "triplet" not in stats and "sparsity" not in stats
