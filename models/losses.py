"""Training losses of the joint-loss network.

* Identity loss per branch: cross-entropy with label smoothing (Szegedy et al. 2016; Luo et al. 2019 "Bag of
  Tricks"), one per branch/stream as in JLML's multi-loss (Li et al. IJCAI 2017).
* Batch-hard triplet loss on the descriptor (Hermans, Beyer, Leibe 2017, "In Defense of the Triplet Loss":
  the "batch hard" loss and its soft-margin variant), used with the identity loss as in Liu et al.'s joint loss.
* Group-sparsity regulariser: the L2,1 norm of each branch's embedding weights (JLML's structured
  sparsity for discriminative feature selection).
* Knowledge distillation from cached teacher embeddings (one or several teachers, e.g. Intel's
  person-reidentification-retail-0286 and -0277; ``models.teacher_cache``), two terms on the L2-normalised
  descriptors of a batch:
    - similarity-preserving loss (Tung & Mori, ICCV 2019, "Similarity-Preserving Knowledge Distillation",
      Eq. 2-4, here on L2-normalised embeddings so each Gram entry is a cosine):
      ``L_sp = (1/b^2) ||S_s - S_t||_F^2`` with ``S = X X^T`` over the batch;
    - relational ranking KL (the batch-wise softmax over similarities of Passalis & Tefas, ECCV 2018,
      "Learning Deep Representations with Probabilistic Knowledge Transfer", there with a cosine kernel):
      ``L_pkt = mean_i KL(softmax_j(S_t[i, j] / tau) || softmax_j(S_s[i, j] / tau))`` over ``j != i``.
  Relations, not raw vectors, are matched, so the student's descriptor may differ in size from the teachers'.
* :class:`JointLoss` combines them: ``L = w_id * mean_b CE_b + w_tri * L_tri + w_sp * sum_b ||W_b||_{2,1}
  + w_kd * (w_s * L_sp + L_pkt)``; Liu et al. found softmax:triplet = 0.5:1 best, the default here.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from models.configs import LossConfig


def cross_entropy_label_smoothing(logits: torch.Tensor, targets: torch.Tensor, epsilon: float = 0.1) -> torch.Tensor:
    """Identity loss with label smoothing (as in Bag of Tricks).

    ``q_i = 1 - eps + eps/C`` for the true class, ``eps/C`` otherwise; ``L = -sum_i q_i log p_i``, averaged over the
    batch.

    Args:
        logits: ``float [N, C]``.
        targets: ``int64 [N]`` class indices in ``[0, C)``.
        epsilon: smoothing (0 gives plain cross-entropy).

    Returns:
        Scalar tensor.
    """
    log_probs = F.log_softmax(logits.float(), dim=1)
    num_classes = logits.shape[1]
    smooth = torch.full_like(log_probs, epsilon / num_classes)
    smooth.scatter_(1, targets[:, None], 1.0 - epsilon + epsilon / num_classes)
    return -(smooth * log_probs).sum(dim=1).mean()


def pairwise_euclidean(x: torch.Tensor) -> torch.Tensor:
    """``float [N, N]`` Euclidean distances between the rows of ``x`` (``float [N, D]``), numerically safe at 0."""
    x = x.float()
    sq = (x * x).sum(dim=1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * x @ x.t()).clamp_min(0.0)
    return torch.sqrt(d2 + 1e-12) * (d2 > 0)


def batch_hard_triplet(
    features: torch.Tensor,
    targets: torch.Tensor,
    margin: float | None = 0.3,
    allowed_negatives: Optional[torch.Tensor] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch-hard triplet loss (Hermans et al. 2017; ``margin=None`` gives their soft-margin variant).

    For each anchor ``a``: ``d_ap = max over positives p != a of D(a, p)``, ``d_an = min over negatives of D(a, n)``;
    ``l_a = max(0, margin + d_ap - d_an)`` (or ``log(1 + exp(d_ap - d_an))``), averaged over anchors that have both a
    positive and a negative in the batch (a PK batch guarantees it).

    Args:
        features: ``float [N, D]`` (the pre-BNNeck descriptor, where Bag of Tricks applies the triplet loss).
        targets: ``int64 [N]`` identity labels.
        margin: the margin in feature units, or None for soft-margin.
        allowed_negatives: ``bool [N, N]``: the pairs that may serve as negatives (default: every pair of
            different labels); pairs whose relation is unknown are left out.

    Returns:
        ``(loss, fraction)``: scalar loss, and the fraction of anchors whose hardest negative is farther than the
        hardest positive (a training-progress signal).
    """
    dist = pairwise_euclidean(features)
    same = targets[:, None] == targets[None, :]
    eye = torch.eye(len(targets), dtype=torch.bool, device=targets.device)
    positives, negatives = same & ~eye, ~same
    if allowed_negatives is not None:
        negatives = negatives & allowed_negatives
    valid = positives.any(dim=1) & negatives.any(dim=1)
    if not valid.any():
        zero = features.sum() * 0.0
        return zero, zero.detach()
    d_ap = torch.where(positives, dist, torch.full_like(dist, -1.0)).max(dim=1).values[valid]
    d_an = torch.where(negatives, dist, torch.full_like(dist, float("inf"))).min(dim=1).values[valid]
    if margin is None:
        loss = F.softplus(d_ap - d_an).mean()
    else:
        loss = F.relu(margin + d_ap - d_an).mean()
    return loss, (d_an > d_ap).float().mean().detach()


def group_sparsity(weights: Sequence[torch.Tensor]) -> torch.Tensor:
    """Group-sparsity (L2,1) regulariser (JLML's structured sparsity): ``sum_b sum_j ||W_b[:, j]||_2``.

    Each group is one input feature ``j`` of branch ``b``'s embedding layer ``W_b`` (``[out_dim, in_dim]``);
    driving whole columns to zero discards that input feature, i.e. selects features per branch.

    Returns:
        Scalar tensor (0 for no weights).
    """
    total = None
    for w in weights:
        term = w.float().norm(p=2, dim=0).sum()
        total = term if total is None else total + term
    return total if total is not None else torch.zeros(())


def similarity_preserving(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Similarity-preserving distillation (Tung & Mori 2019, Eq. 4) on L2-normalised rows.

    Args:
        student: ``float [b, D_s]`` student embeddings (normalised here).
        teacher: ``float [b, D_t]`` teacher embeddings (normalised here).

    Returns:
        Scalar ``(1/b^2) sum_ij (cos_s(i, j) - cos_t(i, j))^2``.
    """
    s = F.normalize(student.float(), dim=1)
    t = F.normalize(teacher.float(), dim=1)
    return ((s @ s.t() - t @ t.t()) ** 2).mean()


def probabilistic_transfer(student: torch.Tensor, teacher: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    """Relational ranking KL (Passalis & Tefas 2018): each anchor's softmax over its cosine similarities to the rest
    of the batch, teacher as target.

    Args:
        student, teacher: ``float [b, D_s]``, ``float [b, D_t]`` (normalised here).
        tau: softmax temperature (cosine units).

    Returns:
        Scalar ``mean_i KL(p_t(i, .) || p_s(i, .))``, the anchor itself excluded from each row.
    """
    s = F.normalize(student.float(), dim=1)
    t = F.normalize(teacher.float(), dim=1)
    eye = torch.eye(len(s), dtype=torch.bool, device=s.device)
    log_p_s = F.log_softmax((s @ s.t() / tau).masked_fill(eye, -1e4), dim=1)
    log_p_t = F.log_softmax((t @ t.t() / tau).masked_fill(eye, -1e4), dim=1)
    return (log_p_t.exp() * (log_p_t - log_p_s)).masked_fill(eye, 0.0).sum(dim=1).mean()


class JointLoss:
    """Identity + triplet + group-sparsity loss over a :class:`models.jointloss.JointLossNet`'s training output.

    Args:
        config: weights and switches.
    """

    def __init__(self, config: LossConfig = LossConfig()):
        self.config = config

    def __call__(
        self,
        outputs: dict,
        targets: torch.Tensor,
        embedding_weights: Sequence[torch.Tensor] = (),
        teacher: Optional[torch.Tensor] = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Compute the total loss.

        Args:
            outputs: the network's training-mode output (``features`` list, ``logits`` list).
            targets: ``int64 [N]`` identity labels in ``[0, num_classes)``.
            embedding_weights: ``JointLossNet.embedding_weights()`` (used when ``sparsity_weight > 0``).
            teacher: ``float [N, D_t]`` teacher embeddings of the batch's images, or None (no distillation).

        Returns:
            ``(loss, stats)``: scalar tensor to back-propagate; plain floats ``loss``, ``id``, ``triplet``,
            ``sparsity``, ``kd_sp``, ``kd_pkt``, ``accuracy`` (identity accuracy of the first classifier) and
            ``triplet_ok``.
        """
        c = self.config
        total = torch.zeros((), device=targets.device)
        stats: dict[str, float] = {}
        logits = outputs.get("logits") or []
        if logits and c.id_weight > 0:
            id_loss = torch.stack([self.identity_loss(lg, targets) for lg in logits]).mean()
            total = total + c.id_weight * id_loss
            stats["id"] = float(id_loss.detach())
        if logits:
            stats["accuracy"] = float((self.predicted(logits[0].detach(), targets) == targets).float().mean())
        if c.triplet_weight > 0:
            descriptor = torch.cat(outputs["features"], dim=1)
            tri, ok = batch_hard_triplet(
                descriptor, self.triplet_labels(targets), c.triplet_margin, self.triplet_negatives(targets)
            )
            total = total + c.triplet_weight * tri
            stats["triplet"], stats["triplet_ok"] = float(tri.detach()), float(ok)
        if c.sparsity_weight > 0 and embedding_weights:
            sparsity = group_sparsity(embedding_weights)
            total = total + c.sparsity_weight * sparsity
            stats["sparsity"] = float(sparsity.detach())
        if teacher is not None and c.distill_weight > 0:
            sp = similarity_preserving(outputs["descriptor"], teacher)
            pkt = probabilistic_transfer(outputs["descriptor"], teacher, c.distill_tau)
            total = total + c.distill_weight * (c.similarity_weight * sp + pkt)
            stats["kd_sp"], stats["kd_pkt"] = float(sp.detach()), float(pkt.detach())
        stats["loss"] = float(total.detach())
        return total, stats

    def identity_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """One branch's identity loss: cross-entropy with label smoothing over every class."""
        return cross_entropy_label_smoothing(logits, targets, self.config.label_smoothing)

    def predicted(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``int64 [N]``: the class each image is given (for the accuracy statistic)."""
        return logits.argmax(dim=1)

    def triplet_labels(self, targets: torch.Tensor) -> torch.Tensor:
        """The labels the triplet loss takes as one person: the identity labels themselves."""
        return targets

    def triplet_negatives(self, targets: torch.Tensor) -> Optional[torch.Tensor]:
        """``bool [N, N]`` pairs the triplet loss may push apart, or None: every pair of different labels."""
        return None
