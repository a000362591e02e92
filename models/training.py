"""Training loop of the joint-loss network: PK batches, joint loss, warm-up + step/cosine schedule, AMP, checkpoints.

Recipe (Luo et al. 2019, "Bag of Tricks"): Adam, base learning rate 3.5e-4, weight decay 5e-4, linear warm-up from
10% over the first 10 epochs, then x0.1 at epochs 40 and 70 (``schedule="step"``) or a cosine decay; 120 epochs;
P=16 identities x K=4 images per batch. A checkpoint (weights + metadata + optimizer state) is written after every
epoch, so ``resume`` continues where an interrupted run stopped; the final checkpoint drops the optimizer state.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from models.checkpoint import load_checkpoint, save_checkpoint
from models.configs import TrainConfig
from models.datasets import ReidSample
from models.jointloss import JointLossNet
from models.keypoint_cache import as_optional, read_image
from models.losses import JointLoss
from models.sampler import PKSampler
from models.transforms import TrainTransform


def learning_rate_factor(epoch: int, config: TrainConfig) -> float:
    """Multiplier of the base learning rate during (0-based) ``epoch``.

    Warm-up: ``0.1 + 0.9 * epoch / warmup_epochs``; then ``gamma ** (milestones passed)`` (step) or
    ``0.5 * (1 + cos(pi * t))`` with ``t`` the fraction of post-warm-up epochs done (cosine).
    """
    if epoch < config.warmup_epochs:
        return 0.1 + 0.9 * epoch / config.warmup_epochs
    if config.schedule == "cosine":
        span = max(1, config.epochs - config.warmup_epochs)
        return 0.5 * (1.0 + math.cos(math.pi * (epoch - config.warmup_epochs) / span))
    return config.gamma ** sum(epoch >= m for m in config.milestones)


class TrainingImages(Dataset):
    """Labelled training images through :class:`models.transforms.TrainTransform`.

    Items: ``(image float32 [3, H, W], part_boxes float32 [P, 4], label int64, index int64)``.

    Args:
        samples: the training split.
        labels: ``int [N]`` identity labels in ``[0, num_classes)``.
        keypoints: ``float32 [N, 17, 3]`` (NaN rows: no person found) or None.
        transform: the augmentation.
        preload: decode and resize every image now and keep it in memory (``uint8 [N, H, W, 3]``).
    """

    def __init__(
        self,
        samples: Sequence[ReidSample],
        labels: Sequence[int],
        keypoints: Optional[np.ndarray],
        transform: TrainTransform,
        preload: bool = False,
        on_preload: Callable[[int, int], None] = lambda done, total: None,
    ):
        self.samples, self.labels, self.transform = list(samples), list(labels), transform
        self.keypoints = None if keypoints is None else np.array(keypoints, np.float32, copy=True)
        self.images: Optional[np.ndarray] = None
        if preload:
            height, width = transform.input_size
            self.images = np.empty((len(self.samples), height, width, 3), np.uint8)
            for i, sample in enumerate(self.samples):
                image = read_image(sample.path)
                if self.keypoints is not None:  # keypoints follow the resize
                    self.keypoints[i, :, 0] *= width / image.shape[1]
                    self.keypoints[i, :, 1] *= height / image.shape[0]
                self.images[i] = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
                if (i + 1) % 512 == 0 or i + 1 == len(self.samples):
                    on_preload(i + 1, len(self.samples))

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, ()).item()))  # torch seeds each worker
        kp = None if self.keypoints is None else as_optional(self.keypoints[index])
        image = self.images[index] if self.images is not None else read_image(self.samples[index].path)
        image, boxes = self.transform(image, kp, rng)
        return torch.from_numpy(image), torch.from_numpy(boxes), self.labels[index], index


class TrainProgress:
    """Callbacks of :func:`train`; the default does nothing (the CLI draws a progress bar)."""

    def on_epoch_start(self, epoch: int, epochs: int, iterations: int) -> None:
        """Epoch ``epoch`` (1-based) of ``epochs`` begins with ``iterations`` batches."""

    def on_iteration(self, stats: dict[str, float]) -> None:
        """One batch done; ``stats`` from ``JointLoss`` (loss, id, triplet, accuracy, ...) plus ``lr``."""

    def on_epoch_end(self, epoch: int, stats: dict[str, float], metrics: Optional[dict[str, float]]) -> None:
        """Epoch done: mean ``stats`` over its batches and, when evaluated, ``metrics`` (rank-k and mAP, %)."""

    def on_message(self, text: str) -> None:
        """A note for the user."""


@dataclass
class TrainResult:
    """What :func:`train` did.

    Attributes:
        epochs_run: epochs trained in this call.
        history: one dict per epoch ever trained (``epoch``, ``loss``, ``accuracy``, ``lr``, ``seconds`` and
            ``metrics`` when evaluated).
        metrics: the last evaluation's metrics (empty when never evaluated).
        seconds: wall time of this call.
    """

    epochs_run: int
    history: list[dict]
    metrics: dict[str, float]
    seconds: float


def _autocast(device: str, amp: bool):
    if not (amp and device.startswith("cuda")):
        return torch.autocast("cpu", enabled=False), None
    if torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16), None
    return torch.autocast("cuda", dtype=torch.float16), torch.amp.GradScaler("cuda")


def backbone_state(net: JointLossNet) -> dict[str, torch.Tensor]:
    """Copies of the backbone's tensors (``trunk.*`` and ``layer4.*``: the pretrained layers), on the CPU."""
    return {
        k: v.detach().cpu().clone()
        for k, v in net.state_dict().items()
        if k.startswith(("trunk.", "layer4.")) and v.is_floating_point()
    }


def interpolate_backbone(net: JointLossNet, start: dict[str, torch.Tensor], alpha: float) -> None:
    """WiSE-FT (``TrainConfig.wise_alpha``): ``(1 - alpha) * start + alpha * current`` for every backbone tensor."""
    state = net.state_dict()
    with torch.no_grad():
        for key, initial in start.items():
            state[key].copy_((1.0 - alpha) * initial.to(state[key].device) + alpha * state[key])


def train(
    net: JointLossNet,
    samples: Sequence[ReidSample],
    labels: Sequence[int],
    keypoints: Optional[np.ndarray],
    config: TrainConfig,
    loss: JointLoss,
    out: Path,
    metadata: dict,
    device: str = "cpu",
    resume: bool = False,
    evaluate: Optional[Callable[[JointLossNet], dict[str, float]]] = None,
    progress: Optional[TrainProgress] = None,
    stop: Callable[[], bool] = lambda: False,
    teacher: Optional[np.ndarray] = None,
    sample_groups: Optional[Sequence[int]] = None,
) -> TrainResult:
    """Train ``net`` and write a checkpoint to ``out`` after every epoch.

    Args:
        net: the network, with ``config.num_classes`` equal to the number of training identities.
        samples, labels: the training split and its labels in ``[0, num_classes)``.
        keypoints: ``float32 [N, 17, 3]`` per training image (NaN rows: none), or None (fixed part boxes).
        config: optimisation settings.
        loss: the joint loss.
        out: checkpoint file.
        metadata: plain values stored with every checkpoint (dataset name, ...); architecture, config, epoch,
            history and metrics are added here.
        device: ``cpu`` or ``cuda:N``.
        resume: continue from ``out`` (its weights, optimizer state, epoch and history).
        evaluate: returns metrics (rank-k, mAP in %) for the network; called every ``eval_every`` epochs and after
            the last one. The network is in eval mode during the call.
        progress: callbacks.
        stop: polled between batches; when it returns True the current epoch's checkpoint is written and
            training returns early (resume continues).
        teacher: ``float32 [N, D_t]`` cached teacher embeddings of ``samples`` (``models.teacher_cache``) for the
            loss's distillation terms, or None.
        sample_groups: ``int [N]``: what the PK sampler draws P of per batch (default: ``labels``); site adaptation
            draws pseudo identities (``models.adaptation``), so associated tracklets share a batch.

    Returns:
        A :class:`TrainResult`.

    Raises:
        ValueError: invalid config, or a resumed checkpoint of a different architecture.
    """
    progress = progress or TrainProgress()
    config.validate()
    t_start = time.perf_counter()
    torch.manual_seed(config.seed)
    net.to(device)
    if config.freeze_early:
        net.freeze_early_layers()
    params = [p for p in net.parameters() if p.requires_grad]
    groups: list[dict] = [{"params": params}]
    if config.head_lr_factor != 1.0:
        backbone = {id(p) for module in (net.trunk, net.layer4) if module is not None for p in module.parameters()}
        groups = [
            {"params": [p for p in params if id(p) in backbone]},
            {"params": [p for p in params if id(p) not in backbone], "lr_scale": config.head_lr_factor},
        ]
    optimizer = torch.optim.Adam(groups, lr=config.lr, weight_decay=config.weight_decay)
    history: list[dict] = []
    start_epoch = 0
    start_state = backbone_state(net) if config.wise_alpha < 1.0 and not resume else None
    if resume:
        state_dict, previous, training_state = load_checkpoint(out, with_training_state=True)
        if previous.get("config") != net.config.to_dict():
            raise ValueError(
                f"{out} was trained with a different architecture ({previous.get('config')}); "
                f"resume with the same settings or choose another --out"
            )
        net.load_state_dict(state_dict)
        start_epoch = int(previous.get("epoch", 0))
        history = list(previous.get("history", []))
        if config.wise_alpha < 1.0:
            start_state = (training_state or {}).get("start_state")
            if start_state is None and start_epoch < config.epochs:
                raise ValueError(
                    f"{out} holds no starting backbone weights for WiSE-FT (a run begun without it, or "
                    f"a final checkpoint); resume without --wise-ft or start a new run"
                )
        if training_state and "optimizer" in training_state:
            optimizer.load_state_dict(training_state["optimizer"])
        else:
            progress.on_message(
                f"{out} holds no optimizer state (a final checkpoint); continuing with a fresh optimizer"
            )
        if start_epoch >= config.epochs:
            progress.on_message(
                f"{out} is already trained for {start_epoch} of {config.epochs} epochs; nothing "
                f"to do (raise --epochs to train longer)"
            )
    num_parts = net.config.num_parts
    transform = TrainTransform(
        tuple(net.config.input_size), num_parts, net.config.part_mode, preprocessing=net.preprocessing
    )
    if config.preload:
        progress.on_message(f"decoding {len(samples)} training images into memory")
    dataset = TrainingImages(samples, labels, keypoints, transform, config.preload)
    teacher_t = None if teacher is None else torch.from_numpy(np.ascontiguousarray(teacher, np.float32))
    sampler = PKSampler(
        labels if sample_groups is None else sample_groups, config.p, config.k, seed=config.seed + start_epoch
    )
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=config.workers,
        pin_memory=device.startswith("cuda"),
        persistent_workers=config.workers > 0,
    )
    autocast, scaler = _autocast(device, config.amp)
    metrics: dict[str, float] = next((h["metrics"] for h in reversed(history) if h.get("metrics")), {})
    epochs_run = 0

    def checkpoint(epoch: int, final: bool) -> None:
        meta = dict(
            metadata,
            architecture="jointloss",
            config=net.config.to_dict(),
            loss=asdict(loss.config),
            train=asdict(config),
            input_size=list(net.config.input_size),
            dims=net.config.dims,
            preprocessing=net.preprocessing.to_dict(),
            epoch=epoch,
            epochs=config.epochs,
            history=history,
            metrics=metrics,
        )
        state = (
            None
            if final
            else {
                "optimizer": optimizer.state_dict(),
                **({"start_state": start_state} if start_state is not None else {}),
            }
        )
        save_checkpoint(out, {k: v.detach().cpu() for k, v in net.state_dict().items()}, meta, state)

    for epoch in range(start_epoch, config.epochs):
        lr = config.lr * learning_rate_factor(epoch, config)
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        iterations = len(sampler) if config.max_iterations is None else min(len(sampler), config.max_iterations)
        progress.on_epoch_start(epoch + 1, config.epochs, iterations)
        net.train()
        sums: dict[str, float] = {}
        t_epoch = time.perf_counter()
        done = 0
        for images, boxes, targets, indices in loader:
            if done >= iterations or stop():
                break
            images = images.to(device, non_blocking=True)
            boxes = boxes.to(device, non_blocking=True)
            targets = torch.as_tensor(targets, device=device)
            with autocast:
                outputs = net(images, boxes)
            targets_t = None if teacher_t is None else teacher_t[indices].to(device, non_blocking=True)
            total, stats = loss(outputs, targets, net.embedding_weights(), targets_t)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(total).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                total.backward()
                optimizer.step()
            stats["lr"] = lr
            for key, value in stats.items():
                sums[key] = sums.get(key, 0.0) + value
            done += 1
            progress.on_iteration(stats)
        if stop():
            checkpoint(epoch, final=False)  # the interrupted epoch is trained again on resume
            progress.on_message(f"stopped during epoch {epoch + 1}; resume with the same command and --resume")
            break
        means = {k: v / max(done, 1) for k, v in sums.items()}
        entry = {
            "epoch": epoch + 1,
            "seconds": round(time.perf_counter() - t_epoch, 2),
            **{k: round(v, 5) for k, v in means.items()},
        }
        last = epoch + 1 == config.epochs
        evaluated = None
        if last and start_state is not None:
            if evaluate is not None:
                net.eval()
                with torch.no_grad():
                    entry["metrics_before_wise_ft"] = evaluate(net)
            interpolate_backbone(net, start_state, config.wise_alpha)
            entry["wise_ft_alpha"] = config.wise_alpha
            progress.on_message(
                f"WiSE-FT: backbone weights = {1 - config.wise_alpha:.2f} x start + "
                f"{config.wise_alpha:.2f} x fine-tuned"
            )
        if evaluate is not None and (last or (config.eval_every > 0 and (epoch + 1) % config.eval_every == 0)):
            net.eval()
            with torch.no_grad():
                evaluated = evaluate(net)
            metrics = evaluated
            entry["metrics"] = evaluated
        history.append(entry)
        epochs_run += 1
        checkpoint(epoch + 1, final=last)
        progress.on_epoch_end(epoch + 1, means, evaluated)
    net.eval()
    return TrainResult(epochs_run, history, metrics, time.perf_counter() - t_start)
