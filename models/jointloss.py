"""The joint-loss re-id network: a shared ResNet trunk, a global branch and pose-guided body-part branches.

Architecture (see ../shared/DESIGN.md):
    * Shared trunk: a backbone of ``models.backbones`` up to its stride-16 map (ResNet stem + ``layer1``-``layer3``,
      or MobileNetV2 ``features[:14]``; shared low-level features, JLML Sec. 3.1).
    * Global branch: the backbone's last stage (``layer4``; stride 1 with ``last_stride=1``, Luo et al. 2019 "Bag of
    Tricks") -> global
      average pooling -> linear embedding -> BNNeck (BatchNorm whose output is used at inference) -> identity
      classifier.
    * Local branch: one stream per body part. Part boxes (from COCO-17 keypoints, ``models.parts``) are cut out of
      the stride-16 trunk map with ``torchvision.ops.roi_align`` (Liu et al., RoI pooling of pose-guided part
      regions from a mid-level feature map); each part has its own 1x1 conv head, embedding, BNNeck and identity
      classifier (JLML's one softmax loss per branch/stream).
    * Descriptor: concatenation of the BNNeck outputs of the global embedding and every part embedding,
      L2-normalised. Default dims: 512 (global) + 4 x 128 (parts) = 1024.

Ablation switches (``JointLossConfig``) reproduce the papers' comparisons: global only / local only
(``use_global``, ``use_parts``), one identity loss per branch (JLML's multi-loss, ``loss_mode="per_branch"``) versus
one classifier over the concatenated descriptor (``loss_mode="concat"``), 2/4/6 parts (``num_parts``) and pose-guided
parts versus fixed horizontal stripes (``part_mode``). Losses live in ``models.losses``, training in
``models.training``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import roi_align

from models.backbones import MID_STRIDE, backbone_spec, early_layers
from models.configs import JointLossConfig
from models.parts import fallback_stripes, stripe_boxes
from models.transforms import PREPROCESSINGS


class _EmbeddingHead(nn.Module):
    """Linear embedding (or the input itself when it already is the embedding) -> BNNeck -> (optional) identity
    classifier."""

    def __init__(self, in_dim: int, dim: int, num_classes: int, project: bool = True):
        super().__init__()
        self.embed = nn.Linear(in_dim, dim) if project else nn.Identity()
        self.bnneck = nn.BatchNorm1d(dim)
        self.bnneck.bias.requires_grad_(False)
        self.classifier = nn.Linear(dim, num_classes, bias=False) if num_classes > 0 else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        feat = self.embed(x)
        bn = self.bnneck(feat)
        logits = self.classifier(bn) if self.classifier is not None and self.training else None
        return feat, bn, logits


class JointLossNet(nn.Module):
    """Global + pose-guided part re-id network (module docstring gives the architecture and sources).

    Args:
        config: architecture.
        pretrained_trunk: ImageNet initialisation of the backbone: True (torchvision's download, or the
            registry's error naming the local file it needs), False (random), or a path to a local ImageNet
            state_dict (``models.backbones``).

    Raises:
        ValueError: invalid config.
        WeightsError: ImageNet weights requested but unavailable or unreadable.
    """

    def __init__(self, config: JointLossConfig, pretrained_trunk: bool | str | Path = False):
        super().__init__()
        config.validate()
        self.config = config
        if pretrained_trunk is False and config.trunk_graph is not None:
            pretrained_trunk = config.trunk_graph
        built = backbone_spec(config.backbone).build(config.last_stride, pretrained_trunk)
        config.trunk_graph = built.graph
        #: the pixel convention of ``forward``'s ``images`` (``models.transforms.Preprocessing``)
        self.preprocessing = PREPROCESSINGS[backbone_spec(config.backbone).preprocessing]
        self.trunk = built.trunk
        mid_channels, top_channels = built.mid_channels, built.top_channels
        self.pooled_top = built.pooled_top
        self.layer4 = built.top if config.use_global else None
        branch_classes = config.num_classes if config.loss_mode == "per_branch" else 0
        project = not (built.pooled_top and config.global_dim == top_channels)
        self.global_head = (
            _EmbeddingHead(top_channels, config.global_dim, branch_classes, project) if config.use_global else None
        )
        if config.use_parts:
            self.part_convs = nn.ModuleList(
                nn.Sequential(nn.Conv2d(mid_channels, 256, 1, bias=False), nn.BatchNorm2d(256), nn.ReLU(inplace=True))
                for _ in range(config.num_parts)
            )
            self.part_heads = nn.ModuleList(
                _EmbeddingHead(256, config.part_dim, branch_classes) for _ in range(config.num_parts)
            )
        else:
            self.part_convs = None
            self.part_heads = None
        fixed = stripe_boxes(*config.input_size, fallback_stripes(config.num_parts))
        self.register_buffer("fixed_boxes", torch.from_numpy(fixed), persistent=False)  # [P, 4], input pixels
        self.joint_classifier = (
            nn.Linear(config.dims, config.num_classes, bias=False)
            if config.loss_mode == "concat" and config.num_classes > 0
            else None
        )

    def freeze_early_layers(self) -> int:
        """Freeze the backbone's low-level stem (``models.backbones.early_layers``); returns parameters frozen.
        Call :meth:`train` afterwards as usual: the frozen layers stay in eval mode (fixed BatchNorm statistics)."""
        self._frozen, frozen = early_layers(self.trunk, self.config.backbone)
        for p in frozen:
            p.requires_grad_(False)
        return sum(p.numel() for p in frozen)

    def train(self, mode: bool = True) -> "JointLossNet":
        """``nn.Module.train``, keeping frozen early layers in eval mode."""
        super().train(mode)
        for module in getattr(self, "_frozen", []):
            module.eval()
        return self

    def embedding_weights(self) -> list[torch.Tensor]:
        """The embedding layers' weights ``[out_dim, in_dim]`` (global first, then each part), on which the
        group-sparsity (L2,1) regulariser of ``models.losses.group_sparsity`` acts."""
        heads = ([self.global_head] if self.global_head is not None else []) + list(self.part_heads or [])
        return [h.embed.weight for h in heads if isinstance(h.embed, nn.Linear)]

    def forward(self, images: torch.Tensor, part_boxes: Optional[torch.Tensor] = None) -> dict[str, torch.Tensor]:
        """Encode a batch.

        Args:
            images: ``float32 [N, 3, H, W]`` in the backbone's pixel convention (``models.backbones``:
                normalised RGB with ImageNet mean/std, or BGR 0-255), ``H, W`` = ``config.input_size``.
            part_boxes: ``float32 [N, P, 4]`` part boxes ``(x1, y1, x2, y2)`` in input pixels; ignored with
                ``part_mode="stripes"``; None uses the fixed-ratio boxes (``models.parts.fallback_stripes``).

        Returns:
            ``descriptor``: ``[N, D]`` L2-normalised concatenation of BNNeck features. In training mode also
            ``features`` (list of pre-BNNeck embeddings ``[N, d_b]``, global first, for the triplet loss) and
            ``logits`` (list of identity logits ``[N, num_classes]``: one per branch/stream with
            ``loss_mode="per_branch"``, a single one over the concatenation with ``"concat"``; only when
            ``num_classes > 0``).

        Raises:
            ValueError: ``part_boxes`` does not hold ``num_parts`` boxes per image.
        """
        mid = self.trunk(images)
        feats, bns, logits = [], [], []
        if self.global_head is not None:
            top = self.layer4(mid)
            pooled = top if self.pooled_top else F.adaptive_avg_pool2d(top, 1).flatten(1)
            feat, bn, logit = self.global_head(pooled)
            feats.append(feat), bns.append(bn), logits.append(logit)
        if self.part_heads is not None:
            if part_boxes is None or self.config.part_mode == "stripes":
                part_boxes = self.fixed_boxes.expand(images.shape[0], -1, -1)
            n, p = part_boxes.shape[:2]
            if p != self.config.num_parts:
                raise ValueError(f"expected {self.config.num_parts} part boxes per image, got {p}")
            # RoIs stay float32 whatever the autocast dtype: in bf16, image indices above 256 would round to a
            # neighbour and the parts would come from another image.
            index = torch.arange(n, device=images.device, dtype=torch.float32).repeat_interleave(p)
            rois = torch.cat([index[:, None], part_boxes.reshape(n * p, 4).float()], dim=1)
            regions = roi_align(
                mid.float(),
                rois,
                output_size=tuple(self.config.roi_size),
                spatial_scale=1.0 / MID_STRIDE,
                sampling_ratio=2,
                aligned=True,
            ).to(mid.dtype)
            regions = regions.reshape(n, p, *regions.shape[1:])
            for k in range(p):
                pooled = F.adaptive_avg_pool2d(self.part_convs[k](regions[:, k]), 1).flatten(1)
                feat, bn, logit = self.part_heads[k](pooled)
                feats.append(feat), bns.append(bn * self.config.part_weight if self.global_head is not None else bn)
                logits.append(logit)
        joint = torch.cat(bns, dim=1)
        out = {"descriptor": F.normalize(joint.float(), dim=1)}
        if self.training:
            out["features"] = feats
            if self.joint_classifier is not None:
                out["logits"] = [self.joint_classifier(joint)]
            elif self.config.num_classes > 0:
                out["logits"] = logits
        return out
