"""The settings of the joint-loss re-id network, its losses and its training, as plain dataclasses with no torch:
stored in checkpoints as dicts, and the source of the defaults ``reid-app train`` shows (``reid_app.training_cli``
reads them here without loading torch)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

from models.parts import PART_COUNTS, part_names

SCHEDULES = ("step", "cosine")


@dataclass
class TrainConfig:
    """Optimisation settings; stored in checkpoint metadata.

    Attributes:
        epochs: passes over the identities (one PK batch covers P of them).
        p, k: identities per batch, images per identity.
        lr: base learning rate (Adam).
        weight_decay: L2 weight decay.
        warmup_epochs: linear warm-up from 10% of ``lr``.
        schedule: ``step`` (x ``gamma`` at each of ``milestones``) or ``cosine``.
        milestones: epochs of the step decays.
        gamma: step decay factor.
        amp: mixed precision on CUDA (bf16 where supported, else fp16 with loss scaling); ignored on CPU.
        eval_every: evaluate every N epochs (0: only after the last epoch).
        workers: data-loading processes.
        seed: random seed.
        max_iterations: cap on iterations per epoch (None: one pass over the identities).
        freeze_early: freeze the backbone's low-level stem (``JointLossNet.freeze_early_layers``).
        preload: decode every training image once, resized to the input size, and keep it in memory (saves the
            JPEG/PNG decoding of every epoch; about ``N * H * W * 3`` bytes).
        head_lr_factor: learning rate of the layers outside the pretrained backbone (embedding heads, BNNecks,
            part branches, classifiers) as a multiple of ``lr``: new layers learn faster while a pretrained trunk
            moves slowly (1: one rate for all).
        wise_alpha: weight-space ensembling of the fine-tuned backbone with its starting weights after the last
            epoch (WiSE-FT, Wortsman et al., "Robust fine-tuning of zero-shot models", CVPR 2022, Eq. 1):
            ``theta = (1 - alpha) * theta_0 + alpha * theta_ft`` for every backbone tensor (trunk and its last stage
            or head); 1 keeps the fine-tuned weights. Trades a little in-domain accuracy for accuracy on cameras
            the training set never saw.
    """

    epochs: int = 120
    p: int = 16
    k: int = 4
    lr: float = 3.5e-4
    weight_decay: float = 5e-4
    warmup_epochs: int = 10
    schedule: str = "step"
    milestones: list = field(default_factory=lambda: [40, 70])
    gamma: float = 0.1
    amp: bool = True
    eval_every: int = 10
    workers: int = 2
    seed: int = 0
    max_iterations: Optional[int] = None
    freeze_early: bool = False
    preload: bool = False
    head_lr_factor: float = 1.0
    wise_alpha: float = 1.0

    def validate(self) -> None:
        """Raise ``ValueError`` for impossible settings."""
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.lr <= 0:
            raise ValueError(f"the learning rate must be positive, got {self.lr}")
        if not 0.0 <= self.wise_alpha <= 1.0:
            raise ValueError(f"the WiSE-FT weight must be in [0, 1], got {self.wise_alpha}")
        if self.head_lr_factor <= 0:
            raise ValueError(f"the head learning-rate factor must be positive, got {self.head_lr_factor}")


@dataclass(frozen=True)
class LossConfig:
    """Weights and switches of :class:`JointLoss`; stored in checkpoints as a plain dict.

    Attributes:
        id_weight: weight of the identity losses (mean over branches).
        triplet_weight: weight of the batch-hard triplet loss (0 disables it: "without triplet" ablation).
        triplet_margin: margin of the triplet loss; None for soft-margin.
        label_smoothing: epsilon of the identity loss.
        sparsity_weight: weight of the L2,1 group-sparsity term (0 disables it).
        distill_weight: weight of the distillation terms (used when teacher embeddings are given).
        distill_tau: temperature of :func:`probabilistic_transfer`.
        similarity_weight: ``w_s``, the weight of :func:`similarity_preserving` within the distillation term
            (its squared cosine differences are about 10x smaller than the KL term).
    """

    id_weight: float = 0.5
    triplet_weight: float = 1.0
    triplet_margin: float | None = 0.3
    label_smoothing: float = 0.1
    sparsity_weight: float = 0.0
    distill_weight: float = 1.0
    distill_tau: float = 0.1
    similarity_weight: float = 10.0

    def to_dict(self) -> dict:
        """Plain dict for checkpoint metadata."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "LossConfig":
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


LOSS_MODES = ("per_branch", "concat")


PART_MODES = ("pose", "stripes")


@dataclass
class JointLossConfig:
    """Architecture of a :class:`JointLossNet`; stored in checkpoints as a plain dict.

    Attributes:
        backbone: a key of ``models.backbones.BACKBONES``: ``resnet50`` (default), ``resnet34``, ``resnet18`` or
            ``mobilenet_v2`` (lightest; the shipped model's).
        last_stride: stride of ``layer4`` (1 keeps a 16x8 map at 256x128 input; 2 is torchvision's default).
        global_dim: global embedding size.
        part_dim: embedding size of each part stream.
        num_parts: number of part streams (4: head+shoulder, upper body, upper leg, lower leg; 2 or 6 with
            ``part_mode="pose"``, any count with ``stripes``).
        use_global / use_parts: enable each branch (at least one).
        part_mode: ``pose`` (part boxes from keypoints, fallback stripes) or ``stripes`` (always fixed stripes).
        loss_mode: ``per_branch`` (one identity classifier per branch/stream, JLML) or ``concat`` (one classifier
            over the concatenated BNNeck features; JLML's "one loss" ablation).
        roi_size: ``[h, w]`` of each part's RoI-aligned feature map.
        num_classes: identities of the training set (0: no classifiers, inference only).
        input_size: ``[height, width]`` of the network input in pixels.
        trunk_graph: an imported IR backbone's graph description (``models.ir_import.IRNetwork.spec``), filled in
            when the network is built from the IR, so the checkpoint rebuilds without it; None otherwise.
        part_weight: scale of the part embeddings in the descriptor relative to the global one (1: the plain
            concatenation). Below 1, a strong pretrained global branch keeps more say in the cosine than part
            branches trained on few identities; part-level explanations are unaffected (a slice's cosine does not
            depend on its scale).
    """

    backbone: str = "resnet50"
    last_stride: int = 1
    global_dim: int = 512
    part_dim: int = 128
    num_parts: int = 4
    use_global: bool = True
    use_parts: bool = True
    part_mode: str = "pose"
    loss_mode: str = "per_branch"
    roi_size: list = field(default_factory=lambda: [4, 4])
    num_classes: int = 0
    input_size: list = field(default_factory=lambda: [256, 128])
    trunk_graph: Optional[dict] = None
    part_weight: float = 1.0

    @property
    def dims(self) -> int:
        """Length of the descriptor."""
        return (self.global_dim if self.use_global else 0) + (self.num_parts * self.part_dim if self.use_parts else 0)

    def descriptor_layout(self) -> list[dict]:
        """Which columns of the descriptor each branch fills: ``[{"name", "start", "stop"}]`` in order, ``global``
        first, then each part by its readable name (``models.parts.part_names``), so a match can be explained part
        by part (cosine of each slice)."""
        layout, start = [], 0
        if self.use_global:
            layout.append({"name": "global", "start": 0, "stop": self.global_dim})
            start = self.global_dim
        if self.use_parts:
            for name in part_names(self.num_parts, self.part_mode):
                layout.append({"name": name, "start": start, "stop": start + self.part_dim})
                start += self.part_dim
        return layout

    def to_dict(self) -> dict:
        """Plain dict for checkpoint metadata."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "JointLossConfig":
        """Inverse of :meth:`to_dict`; unknown keys are ignored.

        Raises:
            ValueError: an invalid backbone or no branch enabled.
        """
        config = cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        config.validate()
        return config

    def validate(self) -> None:
        """Raise ``ValueError`` for an impossible configuration."""
        from models.backbones import BACKBONES, backbone_spec  # torch: only when a network is about to be built

        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {self.backbone!r}; choose one of {tuple(BACKBONES)}")
        if not (self.use_global or self.use_parts):
            raise ValueError("at least one of use_global and use_parts must be enabled")
        if self.last_stride not in (1, 2):
            raise ValueError("last_stride must be 1 or 2")
        if self.part_mode not in PART_MODES:
            raise ValueError(f"unknown part_mode {self.part_mode!r}; choose one of {PART_MODES}")
        if self.loss_mode not in LOSS_MODES:
            raise ValueError(f"unknown loss_mode {self.loss_mode!r}; choose one of {LOSS_MODES}")
        if self.use_parts and self.part_mode == "pose" and self.num_parts not in PART_COUNTS:
            raise ValueError(
                f"pose-guided parts are defined for {PART_COUNTS} parts, not {self.num_parts}; "
                f"use part_mode='stripes' for other counts"
            )
        if self.use_parts and self.num_parts < 1:
            raise ValueError("num_parts must be at least 1")
        if not self.part_weight > 0:
            raise ValueError(f"part_weight must be positive, got {self.part_weight}")
        fixed = backbone_spec(self.backbone).input_size
        if fixed is not None and tuple(self.input_size) != tuple(fixed):
            raise ValueError(
                f"backbone {self.backbone} takes {fixed[0]}x{fixed[1]} inputs only, not "
                f"{self.input_size[0]}x{self.input_size[1]}"
            )
