"""Site self-adaptation of the joint-loss network without labels, after Li, Zhu and Gong, "Unsupervised Person
Re-identification by Deep Learning Tracklet Association" (ECCV 2018) and "Unsupervised Tracklet Person
Re-Identification" (TPAMI 2019, UTAL).

- **Per-camera tracklet discrimination** (UTAL Sec. 3.1, Eq. 1): every tracklet is a class of its own camera's
  classifier. One classifier over all tracklets would push apart one person's tracklets of two cameras; so the
  softmax of an image spans only its camera's tracklets (:func:`camera_masked_cross_entropy`).
- **Cross-camera tracklet association** (UTAL Sec. 3.2, Eq. 4-6, cyclic ranking consistency): a tracklet and the
  most similar tracklet of another camera are taken as one person when each is the other's nearest there and their
  similarity reaches a threshold (:func:`associate_tracklets`); confirmed pairs of investigators join them, and
  known negatives (seen at once, rejected) never do. Associated tracklets share a pseudo identity, which the
  batch-hard triplet loss (Hermans et al. 2017) pulls together and which the PK sampler keeps in one batch.
- **Distillation from the starting model** (ours, as in ``models.losses``: similarity-preserving and probabilistic
  knowledge transfer on the descriptor) keeps the network near what it knew, so a few minutes on one site do not
  undo what it learnt from many people.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy.cluster.hierarchy import DisjointSet

from models.configs import LossConfig
from models.losses import JointLoss


def tracklet_features(embeddings: np.ndarray, tracklet_of_image: np.ndarray, tracklets: int) -> np.ndarray:
    """The mean of each tracklet's image embeddings, L2-normalised.

    Args:
        embeddings: ``float32 [N, D]`` image embeddings (L2-normalised).
        tracklet_of_image: ``int64 [N]`` tracklet index of each image, in ``[0, tracklets)``.
        tracklets: number of tracklets ``T``.

    Returns:
        ``float32 [T, D]`` (a tracklet without images: zeros).
    """
    sums = np.zeros((tracklets, embeddings.shape[1]), np.float64)
    np.add.at(sums, tracklet_of_image, embeddings.astype(np.float64))
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.maximum(norms, 1e-12)).astype(np.float32)


def associate_tracklets(
    features: np.ndarray,
    cameras: np.ndarray,
    threshold: float,
    negatives: Iterable[tuple[int, int]] = (),
) -> list[tuple[int, int]]:
    """Cross-camera associations by cyclic ranking consistency (UTAL Sec. 3.2): ``(i, j)``, ``i < j``, when
    ``j`` is ``i``'s most similar tracklet in ``j``'s camera, ``i`` is ``j``'s most similar in ``i``'s camera, their
    cosine is at least ``threshold``, and the pair is not a known negative.

    Args:
        features: ``float32 [T, D]`` L2-normalised tracklet features.
        cameras: ``int64 [T]`` camera of each tracklet.
        threshold: the lowest cosine that associates.
        negatives: index pairs that are not one person.
    """
    forbidden = {(min(a, b), max(a, b)) for a, b in negatives}
    sims = features @ features.T
    pairs = set()
    for camera in np.unique(cameras):
        inside = np.flatnonzero(cameras == camera)
        for other in np.unique(cameras):
            if other == camera:
                continue
            there = np.flatnonzero(cameras == other)
            block = sims[np.ix_(inside, there)]
            best_there = there[np.argmax(block, axis=1)]
            best_back = inside[np.argmax(block, axis=0)]  # for each tracklet there, its nearest here
            back = dict(zip(there.tolist(), best_back.tolist()))
            for i, j in zip(inside.tolist(), best_there.tolist()):
                pair = (min(i, j), max(i, j))
                if back[j] == i and sims[i, j] >= threshold and pair not in forbidden:
                    pairs.add(pair)
    return sorted(pairs)


def pseudo_identities(tracklets: int, pairs: Iterable[tuple[int, int]]) -> np.ndarray:
    """``int64 [T]``: one label per group of tracklets joined by ``pairs`` (associations and confirmations), in
    ``[0, groups)``, numbered by each group's smallest tracklet."""
    groups = DisjointSet(range(tracklets))
    for a, b in pairs:
        groups.merge(a, b)
    label = np.zeros(tracklets, np.int64)
    for n, members in enumerate(sorted(groups.subsets(), key=min)):
        label[list(members)] = n
    return label


def camera_masked_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, allowed: torch.Tensor, smoothing: float = 0.0
) -> torch.Tensor:
    """Cross-entropy over the classes of each image's own camera only (UTAL Eq. 1), with label smoothing spread
    over those classes.

    Args:
        logits: ``float [B, C]`` over all tracklets. targets: ``int64 [B]`` tracklet of each image.
        allowed: ``bool [B, C]``: the tracklets of each image's camera.
        smoothing: label-smoothing epsilon.
    """
    masked = logits.float().masked_fill(~allowed, -1e4)
    log_p = F.log_softmax(masked, dim=1)
    nll = -log_p.gather(1, targets[:, None]).squeeze(1)
    smooth = -(log_p * allowed).sum(dim=1) / allowed.sum(dim=1).clamp(min=1)
    return ((1.0 - smoothing) * nll + smoothing * smooth).mean()


class TrackletAssociationLoss(JointLoss):
    """The adaptation loss: per-camera tracklet identity loss + batch-hard triplet over pseudo identities +
    distillation from the starting model's embeddings (module docstring).

    Args:
        config: weights (``id_weight``, ``triplet_weight``, ``triplet_margin``, ``label_smoothing``,
            ``distill_weight``...).
        class_cameras: ``int64 [C]`` camera of each tracklet class.
        identities: ``int64 [C]`` pseudo identity of each tracklet class (:func:`pseudo_identities`).
        known_negatives: ``(i, j)`` class pairs known to be two people across cameras (seen at once on cameras that
            do not overlap, rejected by an investigator); the triplet loss may push them apart too.
    """

    def __init__(
        self,
        config: LossConfig,
        class_cameras: Sequence[int],
        identities: Sequence[int],
        known_negatives: Iterable[tuple[int, int]] = (),
    ):
        super().__init__(config)
        self.class_cameras = torch.as_tensor(np.asarray(class_cameras), dtype=torch.long)
        self.identities = torch.as_tensor(np.asarray(identities), dtype=torch.long)
        pairs = np.asarray(sorted(known_negatives), np.int64).reshape(-1, 2)
        # sparse: a site has thousands of tracklets and few known negatives per batch
        self._negative_keys = torch.as_tensor(
            np.unique(
                np.concatenate(
                    [pairs[:, 0] * len(self.identities) + pairs[:, 1], pairs[:, 1] * len(self.identities) + pairs[:, 0]]
                )
            ),
            dtype=torch.long,
        )

    def _allowed(self, targets: torch.Tensor) -> torch.Tensor:
        cameras = self.class_cameras.to(targets.device)
        return cameras[None, :] == cameras[targets][:, None]

    def identity_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per-camera tracklet discrimination: the softmax spans the image's own camera's tracklets."""
        return camera_masked_cross_entropy(logits, targets, self._allowed(targets), self.config.label_smoothing)

    def predicted(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The tracklet of the image's own camera it is given."""
        return logits.masked_fill(~self._allowed(targets), -1e4).argmax(dim=1)

    def triplet_labels(self, targets: torch.Tensor) -> torch.Tensor:
        """Associated and confirmed tracklets are one person: their pseudo identity."""
        return self.identities.to(targets.device)[targets]

    def triplet_negatives(self, targets: torch.Tensor) -> torch.Tensor:
        """Only what is known to be two people is pushed apart: two tracklets of one camera (UTAL's premise) and the
        known negatives. Other tracklets of different cameras that were not associated may still be one person, so
        they are left out."""
        cameras = self.class_cameras.to(targets.device)[targets]
        same_camera = (cameras[:, None] == cameras[None, :]) & (targets[:, None] != targets[None, :])
        if not len(self._negative_keys):
            return same_camera
        keys = targets[:, None] * len(self.identities) + targets[None, :]
        known = torch.isin(keys, self._negative_keys.to(targets.device))
        return same_camera | known
