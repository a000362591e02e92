"""The pieces of site self-adaptation (issue 31): tracklet features, cross-camera association by cyclic ranking
consistency, pseudo identities, and the per-camera masked identity loss."""

import numpy as np
import pytest
import torch

from models.adaptation import (
    TrackletAssociationLoss,
    associate_tracklets,
    camera_masked_cross_entropy,
    pseudo_identities,
    tracklet_features,
)
from models.configs import LossConfig


def _unit(rows):
    rows = np.asarray(rows, np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_a_tracklet_feature_is_the_normalised_mean_of_its_images():
    images = _unit([[1, 0], [0.8, 0.6], [0, 1]])
    features = tracklet_features(images, np.array([0, 0, 1]), 2)
    np.testing.assert_allclose(features[0], _unit([[1.8, 0.6]])[0], atol=1e-6)
    np.testing.assert_allclose(features[1], [0, 1], atol=1e-6)


def test_only_mutual_nearest_tracklets_of_other_cameras_above_the_threshold_are_associated():
    #              cam 0: a, b, c                        cam 1: A, B, C
    features = _unit([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.95, 0.1, 0], [0.1, 0.9, 0.3], [0.9, 0.2, 0.1]])
    cameras = np.array([0, 0, 0, 1, 1, 1])
    pairs = associate_tracklets(features, cameras, threshold=0.5)
    assert pairs == [(0, 3), (1, 4)]  # C's nearest is a, but a's nearest is A: not mutual; c has no partner
    assert associate_tracklets(features, cameras, threshold=0.999) == []  # a-A: cosine 0.994
    assert associate_tracklets(features, cameras, 0.5, negatives=[(3, 0)]) == [(1, 4)]  # a known negative


def test_pseudo_identities_join_what_the_pairs_chain():
    assert pseudo_identities(5, [(0, 3), (3, 4)]).tolist() == [0, 1, 2, 0, 0]
    assert pseudo_identities(3, []).tolist() == [0, 1, 2]


def test_the_identity_loss_competes_only_with_the_images_own_camera():
    logits = torch.tensor([[5.0, 0.0, 9.0], [0.0, 5.0, 9.0]])
    targets = torch.tensor([0, 1])
    cameras = torch.tensor([0, 0, 1])
    allowed = cameras[None, :] == cameras[targets][:, None]
    masked = camera_masked_cross_entropy(logits, targets, allowed)
    plain = torch.nn.functional.cross_entropy(logits, targets)
    assert masked < 0.01 < plain  # class 2 (the other camera) would win a softmax over all tracklets
    smoothed = camera_masked_cross_entropy(logits, targets, allowed, smoothing=0.1)
    assert 0.01 < smoothed < 1.0  # smoothing spreads only over the camera's own classes (finite)


def test_the_loss_pulls_pseudo_identities_together_and_reports_each_term():
    torch.manual_seed(0)
    features = [torch.randn(8, 4, requires_grad=True)]
    outputs = {"features": features, "logits": [torch.randn(8, 4, requires_grad=True)], "descriptor": features[0]}
    targets = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    loss = TrackletAssociationLoss(LossConfig(), class_cameras=[0, 0, 1, 1], identities=[0, 1, 0, 2])
    total, stats = loss(outputs, targets, teacher=torch.randn(8, 4))
    total.backward()
    assert {"id", "triplet", "kd_sp", "kd_pkt", "loss", "accuracy"} <= set(stats)
    assert features[0].grad is not None and torch.isfinite(total)


@pytest.mark.parametrize("threshold", [0.0, 0.3])
def test_every_association_crosses_cameras(threshold):
    rng = np.random.default_rng(1)
    features = _unit(rng.standard_normal((30, 8)))
    cameras = np.repeat([0, 1, 2], 10)
    for a, b in associate_tracklets(features, cameras, threshold):
        assert cameras[a] != cameras[b] and a < b


def test_unassociated_tracklets_of_two_cameras_are_never_pushed_apart():
    # tracklets 0, 1 on camera 0 and 2 on camera 1; 0 and 2 look the same but were not associated
    features = torch.tensor([[0.0, 0.0], [0.1, 0.0], [0.0, 0.0], [0.05, 0.0], [3.0, 0.0], [3.1, 0.0]])
    targets = torch.tensor([0, 0, 2, 2, 1, 1])
    loss = TrackletAssociationLoss(LossConfig(), class_cameras=[0, 0, 1], identities=[0, 1, 2])
    allowed = loss.triplet_negatives(targets)
    assert not allowed[0, 2] and not allowed[2, 0] and allowed[0, 4] and not allowed[0, 1]
    from models.losses import batch_hard_triplet

    everything, _ = batch_hard_triplet(features, loss.triplet_labels(targets), 0.3)
    known_only, _ = batch_hard_triplet(features, loss.triplet_labels(targets), 0.3, allowed)
    assert known_only < 0.05 < everything  # only the look-alike across cameras made the loss
