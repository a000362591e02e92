"""``reid-app train``, ``reid-app evaluate`` and ``reid-app export``: the re-id network's command line.

Registered on the main group by ``reid_app.cli``. Errors are ``ReidAppError``s, printed by ``reid_app.cli.main`` as
one line without a traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Optional

import click

from common.errors import UsageError, WeightsError
from models.configs import JointLossConfig, LossConfig, TrainConfig
from reid_app.cli_helpers import command_settings
from reid_app.console import stderr_console, stdout_console

log = logging.getLogger("reid_app")

DATASET_CHOICES = (
    "market1501",
    "dukemtmc",
    "cuhk03",
    "cuhk03-labeled",
    "cuhk03-detected",
    "cuhk03-views",
    "cuhk01",
    "msmt17",
    "generic",
)
ARCH_CHOICES = (
    "resnet50",
    "resnet34",
    "resnet18",
    "mobilenet_v2",
    "osnet-omz-0286",
    "osnet-omz-0277",
)  # models.backbones.BACKBONES (no torch import)


def _parse_size(text: str) -> list[int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--input-size '{text}' must be HEIGHTxWIDTH in pixels, e.g. 256x128") from None
    if height < 32 or width < 16 or height % 16 or width % 16:
        raise UsageError(f"--input-size '{text}': height and width must be multiples of 16, at least 32x16")
    return [height, width]


def _load_dataset(name: str, root: str, splits=("train", "query", "gallery")):
    from models.datasets import load_dataset

    return load_dataset(name, root, splits)


def _extra_datasets(specs: tuple[str, ...]):
    """``--extra-train NAME:DIR`` values -> datasets (their train splits join the main one's)."""
    out = []
    for spec in specs:
        name, sep, root = spec.partition(":")
        if not sep or name.lower() not in DATASET_CHOICES or not root:
            raise UsageError(f"--extra-train '{spec}' must be NAME:DIR with NAME one of {', '.join(DATASET_CHOICES)}")
        out.append(_load_dataset(name.lower(), root, ("train",)))
    return out


def _load_teacher(spec: str, device: str):
    from common.weights import resolve_weights
    from models.encoders import load_encoder

    resolved = resolve_weights(spec, command_settings().weights_dirs)
    if resolved.path is None:
        raise WeightsError(resolved.missing_message("teacher", "--teacher"))
    return load_encoder(resolved.path, device, 64)


def _teacher_targets(specs: tuple[str, ...], samples, device: str, console):
    """Cached embeddings of every training image by every ``--teacher``, combined into one target, or None."""
    if not specs:
        return None, []
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from common.settings import user_cache_weights_dir
    from models.teacher_cache import combine_teachers, teacher_cache_file, teacher_embeddings

    folder = user_cache_weights_dir().parent / "teachers"
    embeddings, names = [], []
    for spec in specs:
        encoder = _load_teacher(spec, device)
        with Progress(
            TextColumn(f"teacher {encoder.name}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("teacher", total=None)
            embeddings.append(
                teacher_embeddings(
                    encoder,
                    [s.path for s in samples],
                    teacher_cache_file(folder, encoder.name, encoder.checkpoint_hash),
                    on_progress=lambda d, t: progress.update(task, completed=d, total=t),
                )
            )
        names.append(f"{encoder.name} ({encoder.checkpoint_hash[:12]})")
    return combine_teachers(embeddings), names


def _imagenet_weights(arch: str, explicit: Optional[str], pretrained: bool):
    """The ``pretrained_trunk`` argument: a local ImageNet file (explicit or found), True (download) or False."""
    from models.backbones import backbone_spec, find_imagenet_weights

    if not pretrained:
        return False
    if explicit:
        if not Path(explicit).exists():
            raise WeightsError(f"--imagenet {explicit} does not exist")
        return explicit
    if backbone_spec(arch).imagenet_file is None:
        return True
    found = find_imagenet_weights(arch, command_settings().weights_dirs)
    if found is None:
        spec = backbone_spec(arch)
        raise WeightsError(
            f"--arch {arch} needs its {spec.pretrained_name} {spec.imagenet_file}: pass "
            f"--imagenet PATH, put it in a weights folder (REID_APP_WEIGHTS)"
            f"{'' if spec.preprocessing == 'bgr255' else ', or pass --no-pretrained'}"
        )
    return str(found)


def _crop_pose(spec: str, device: str):
    """``(tag, estimate_crops)`` for the keypoint cache, or ``(None, None)`` for fixed part boxes."""
    from common.settings import DEFAULT_POSE
    from common.weights import resolve_weights
    from models.pose import YoloTopDownPose

    if spec == "none":
        return None, None
    settings = command_settings()
    name = DEFAULT_POSE if spec == "auto" else spec
    resolved = resolve_weights(name, settings.weights_dirs, allow_fetch_name=spec != "auto")
    if resolved.path is None and resolved.fetch_name is None:
        if spec == "auto":
            log.warning(
                "no pose model found (%s); part boxes use fixed body ratios. Pass --pose PATH to a YOLO "
                "pose model, or set REID_APP_WEIGHTS, for pose-guided parts",
                DEFAULT_POSE,
            )
            return None, None
        raise WeightsError(resolved.missing_message("pose", "--pose"))
    weights = resolved.path or resolved.fetch_name
    estimator = YoloTopDownPose(weights, device)
    return Path(str(weights)).name, estimator.estimate_crops


def _keypoints(samples, root: Path, tag, estimate, console, what: str):
    """Cached keypoints for ``samples`` (None without a pose model), with a progress bar while estimating."""
    if estimate is None:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from common.settings import user_cache_weights_dir
    from models.keypoint_cache import dataset_keypoints

    with Progress(
        TextColumn(f"keypoints ({what})"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(what, total=None)
        return dataset_keypoints(
            [s.path for s in samples],
            root,
            tag,
            estimate,
            fallback_dir=user_cache_weights_dir().parent / "keypoints",
            on_progress=lambda d, t: progress.update(task, completed=d, total=t),
        )


def _metrics_table(title: str, rows: list[tuple[str, dict]]):
    from rich.table import Table

    table = Table(title=title)
    table.add_column("")
    for name in ("rank-1", "rank-5", "rank-10", "rank-20", "mAP"):
        table.add_column(name, justify="right")
    for label, m in rows:
        table.add_row(label, *(f"{m.get(k, float('nan')):.2f}" for k in ("rank1", "rank5", "rank10", "rank20", "mAP")))
    return table


class _RichTrainProgress:
    """``models.training.TrainProgress`` drawing one progress bar per epoch with loss and accuracy."""

    def __init__(self, console):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console
        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.3f}  acc {task.fields[acc]:.1%}  lr {task.fields[lr]:.1e}"),
            TimeElapsedColumn(),
            console=console,
        )
        self.task = None
        self.sums = {"loss": 0.0, "accuracy": 0.0}
        self.count = 0

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()

    def on_epoch_start(self, epoch, epochs, iterations):
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.sums, self.count = {"loss": 0.0, "accuracy": 0.0}, 0
        self.task = self.progress.add_task(
            "train", total=iterations, epoch=f"{epoch}/{epochs}", loss=0.0, acc=0.0, lr=0.0
        )

    def on_iteration(self, stats):
        self.count += 1
        for key in self.sums:
            self.sums[key] += stats.get(key, 0.0)
        self.progress.update(
            self.task,
            advance=1,
            loss=self.sums["loss"] / self.count,
            acc=self.sums["accuracy"] / self.count,
            lr=stats.get("lr", 0.0),
        )

    def on_epoch_end(self, epoch, stats, metrics):
        line = f"epoch {epoch}: loss {stats.get('loss', 0):.4f}, id accuracy {stats.get('accuracy', 0):.1%}"
        if "triplet" in stats:
            line += f", triplet {stats['triplet']:.4f}"
        if metrics:
            line += f"; rank-1 {metrics['rank1']:.2f}, mAP {metrics['mAP']:.2f}"
        self.progress.console.print(line, markup=False, highlight=False)

    def on_message(self, text):
        self.progress.console.print(f"reid-app: {text}", markup=False, highlight=False, soft_wrap=True)


#: The defaults ``reid-app train`` shows and uses are the configs' own (torch-free: ``models.configs``).
_TRAIN, _NET, _LOSS = TrainConfig(), JointLossConfig(), LossConfig()


@click.command()
@click.option(
    "--dataset",
    required=True,
    type=click.Choice(DATASET_CHOICES, case_sensitive=False),
    help="Dataset layout (see README: Datasets).",
)
@click.option("--root", required=True, metavar="DIR", help="Dataset folder.")
@click.option("--out", required=True, metavar="CKPT", help="Checkpoint file, written after every epoch.")
@click.option(
    "--arch",
    default="resnet50",
    show_default=True,
    type=click.Choice(ARCH_CHOICES),
    help="Trunk backbone. osnet-omz-0286 / osnet-omz-0277 start from Intel's pretrained re-id models "
    "(OpenVINO IR folders found in the weights folders; 256x128 input): the best start on a CPU. "
    "mobilenet_v2 or resnet18 for an ImageNet start.",
)
@click.option(
    "--extra-train",
    multiple=True,
    metavar="DATASET:DIR",
    help="Another dataset whose train split joins --dataset's (repeatable), e.g. cuhk01:data/cuhk01.",
)
@click.option(
    "--teacher",
    multiple=True,
    metavar="MODEL",
    help="Knowledge distillation from this re-id model (repeatable): an OpenVINO IR, ONNX or reid-app "
    "checkpoint. Its embeddings of the training images are computed once and cached.",
)
@click.option(
    "--distill-weight",
    type=float,
    default=_LOSS.distill_weight,
    show_default=True,
    help="Weight of the distillation terms (with --teacher).",
)
@click.option(
    "--imagenet",
    "imagenet_path",
    default=None,
    metavar="PATH",
    help="Local pretrained weights of the backbone: an ImageNet file, or the Open Model Zoo IR folder of "
    "an osnet-omz backbone [default: looked up in the weights folders].",
)
@click.option(
    "--freeze-early/--no-freeze-early",
    default=True,
    show_default=True,
    help="Freeze the backbone's early layers (faster; pretrained features kept): the stride-4 stem of "
    "an ImageNet backbone, the stride-4 and stride-8 stages of an osnet-omz one.",
)
@click.option(
    "--preload/--no-preload",
    default=False,
    show_default=True,
    help="Decode the training images once into memory at the input size.",
)
@click.option("--epochs", type=int, default=_TRAIN.epochs, show_default=True, help="Training epochs.")
@click.option("--device", default=None, metavar="auto|cpu|cuda[:N]", help="Where to train [default: auto].")
@click.option(
    "--amp/--no-amp", default=_TRAIN.amp, show_default=True, help="Mixed precision on CUDA (bf16, else fp16)."
)
@click.option("--resume", is_flag=True, help="Continue an interrupted run from --out (same settings).")
@click.option("--batch-p", type=int, default=_TRAIN.p, show_default=True, help="Identities per batch (PK sampler P).")
@click.option("--batch-k", type=int, default=_TRAIN.k, show_default=True, help="Images per identity (PK sampler K).")
@click.option("--lr", type=float, default=_TRAIN.lr, show_default=True, help="Base learning rate (Adam).")
@click.option(
    "--head-lr-factor",
    type=float,
    default=_TRAIN.head_lr_factor,
    show_default=True,
    help="Learning rate of the new layers (heads, part branches, classifiers) as a multiple of --lr, so "
    "a pretrained trunk moves slowly while they learn.",
)
@click.option("--weight-decay", type=float, default=_TRAIN.weight_decay, show_default=True, help="Weight decay.")
@click.option(
    "--schedule",
    type=click.Choice(["step", "cosine"]),
    default=_TRAIN.schedule,
    show_default=True,
    help="After warm-up: x0.1 at --milestones (step) or cosine decay.",
)
@click.option(
    "--warmup-epochs",
    type=int,
    default=_TRAIN.warmup_epochs,
    show_default=True,
    help="Linear warm-up from 10% of --lr.",
)
@click.option(
    "--milestones",
    default=",".join(map(str, _TRAIN.milestones)),
    show_default=True,
    metavar="E1,E2,...",
    help="Step-decay epochs.",
)
@click.option(
    "--eval-every",
    type=int,
    default=_TRAIN.eval_every,
    show_default=True,
    help="Evaluate on query/gallery every N epochs (0: only at the end).",
)
@click.option(
    "--pose",
    default="auto",
    show_default=True,
    metavar="auto|none|WEIGHTS",
    help="Pose model for the training images' keypoints (computed once, cached beside the dataset); "
    "none uses fixed part boxes.",
)
@click.option(
    "--pretrained/--no-pretrained",
    default=True,
    show_default=True,
    help="Start the trunk from torchvision's ImageNet weights (downloaded once when online).",
)
@click.option(
    "--input-size",
    default="x".join(map(str, _NET.input_size)),
    show_default=True,
    metavar="HxW",
    help="Network input in pixels.",
)
@click.option(
    "--last-stride",
    type=click.Choice(["1", "2"]),
    default=str(_NET.last_stride),
    show_default=True,
    help="Stride of the trunk's last stage.",
)
@click.option(
    "--global-dim",
    type=int,
    default=None,
    help="Global embedding size [default: 512; for an osnet-omz backbone its own 256-D embedding].",
)
@click.option(
    "--part-dim", type=int, default=None, help="Embedding size per part [default: 128; 64 for an osnet-omz backbone]."
)
@click.option(
    "--wise-ft",
    "wise_alpha",
    type=click.FloatRange(0.0, 1.0),
    default=_TRAIN.wise_alpha,
    show_default=True,
    help="After the last epoch, mix the fine-tuned backbone with its starting weights: (1-A) x start + A x "
    "fine-tuned (WiSE-FT). Below 1 it keeps more of what a pretrained re-id trunk knew about "
    "cameras the training set never saw.",
)
@click.option(
    "--part-weight",
    type=float,
    default=_NET.part_weight,
    show_default=True,
    help="Scale of the part embeddings in the descriptor relative to the global one (below 1: the global "
    "branch has more say in the cosine).",
)
@click.option(
    "--parts",
    "num_parts",
    type=int,
    default=4,
    show_default=True,
    help="Body parts (2, 4 or 6 pose-guided; any count with --part-mode stripes).",
)
@click.option(
    "--part-mode",
    type=click.Choice(["pose", "stripes"]),
    default=_NET.part_mode,
    show_default=True,
    help="Pose-guided part boxes or fixed horizontal stripes.",
)
@click.option("--no-global", is_flag=True, help="Ablation: local (part) branch only.")
@click.option("--no-parts", is_flag=True, help="Ablation: global branch only.")
@click.option(
    "--loss-mode",
    type=click.Choice(["per-branch", "concat"]),
    default=_NET.loss_mode.replace("_", "-"),
    show_default=True,
    help="One identity loss per branch (JLML) or one over the concatenated descriptor.",
)
@click.option(
    "--id-weight", type=float, default=_LOSS.id_weight, show_default=True, help="Weight of the identity losses."
)
@click.option(
    "--triplet-weight",
    type=float,
    default=_LOSS.triplet_weight,
    show_default=True,
    help="Weight of the batch-hard triplet loss (0: no triplet).",
)
@click.option("--margin", type=float, default=_LOSS.triplet_margin, show_default=True, help="Triplet margin.")
@click.option("--soft-margin", is_flag=True, help="Soft-margin triplet loss instead of --margin.")
@click.option(
    "--label-smoothing", type=float, default=_LOSS.label_smoothing, show_default=True, help="Identity-loss smoothing."
)
@click.option(
    "--sparsity-weight",
    type=float,
    default=_LOSS.sparsity_weight,
    show_default=True,
    help="Weight of the L2,1 group-sparsity regulariser (JLML); 0 disables it.",
)
@click.option("--workers", type=int, default=None, help="Data-loading processes [default: CPU cores, at most 8].")
@click.option("--seed", type=int, default=_TRAIN.seed, show_default=True, help="Random seed.")
@click.option("--iterations-per-epoch", type=int, default=None, help="Cap batches per epoch (quick trials).")
@click.option(
    "--name",
    default=None,
    help="Model name stored in the checkpoint and with every embedding [default: jointloss-ARCH-DATASET].",
)
def train(
    dataset: str,
    root: str,
    out: str,
    arch: str,
    epochs: int,
    device: Optional[str],
    amp: bool,
    resume: bool,
    batch_p: int,
    batch_k: int,
    lr: float,
    weight_decay: float,
    schedule: str,
    warmup_epochs: int,
    milestones: str,
    eval_every: int,
    pose: str,
    pretrained: bool,
    input_size: str,
    last_stride: str,
    global_dim: Optional[int],
    part_dim: Optional[int],
    num_parts: int,
    part_mode: str,
    no_global: bool,
    no_parts: bool,
    loss_mode: str,
    id_weight: float,
    triplet_weight: float,
    margin: float,
    soft_margin: bool,
    label_smoothing: float,
    sparsity_weight: float,
    workers: Optional[int],
    seed: int,
    iterations_per_epoch: Optional[int],
    name: Optional[str],
    extra_train: tuple[str, ...],
    teacher: tuple[str, ...],
    distill_weight: float,
    imagenet_path: Optional[str],
    freeze_early: bool,
    preload: bool,
    head_lr_factor: float,
    part_weight: float,
    wise_alpha: float,
) -> None:
    """Train the joint-loss re-id network on a dataset and write a checkpoint for 'reid-app ingest --reid'.

    Identity loss per branch with label smoothing plus batch-hard triplet loss (softmax:triplet = 0.5:1), PK
    batches, warm-up then step or cosine schedule. Evaluates rank-1/5/10/20 and mAP on the query/gallery split every
    --eval-every epochs and at the end. Ctrl-C keeps the last finished epoch; --resume continues from it.
    """
    import torch

    from models.configs import JointLossConfig, LossConfig, TrainConfig
    from models.encoders import JointLossEncoder, resolve_device
    from models.evaluation import evaluate_encoder
    from models.jointloss import JointLossNet
    from models.losses import JointLoss
    from models.training import train as run_training

    if epochs < 1:
        raise UsageError(f"--epochs must be at least 1, got {epochs}")
    if batch_p < 2 or batch_k < 2:
        raise UsageError(
            f"--batch-p and --batch-k must be at least 2 (got {batch_p}, {batch_k}): the triplet loss "
            f"needs positives and negatives in every batch"
        )
    if workers is None:
        workers = min(8, os.cpu_count() or 1)
    if workers < 0:
        raise UsageError(f"--workers must be 0 or more, got {workers}")
    if no_global and no_parts:
        raise UsageError("--no-global and --no-parts together leave no branch to train")
    try:
        milestone_list = [int(m) for m in milestones.split(",") if m.strip()]
    except ValueError:
        raise UsageError(f"--milestones '{milestones}' must be comma-separated epoch numbers") from None
    out_path = Path(out)
    if out_path.is_dir():
        raise UsageError(f"--out {out} is a folder; give a checkpoint file name such as {out_path / 'model.pt'}")
    if not out_path.parent.exists():
        raise UsageError(f"--out {out}: folder {out_path.parent} does not exist")
    if resume and not out_path.exists():
        raise UsageError(f"--resume: {out} does not exist yet; start without --resume")
    if out_path.exists() and not resume:
        raise UsageError(f"{out} already exists; pass --resume to continue that run or choose another --out")
    device_name = resolve_device(device or command_settings().device)
    from models.datasets import combine_training_sets

    data = _load_dataset(dataset, root)
    extras = _extra_datasets(extra_train)
    console = stderr_console()
    for part in [data] + extras:
        table_rows = ", ".join(
            f"{split}: {ids} ids / {images} images / {cams} cameras"
            for split, ids, images, cams in part.summary()
            if images
        )
        console.print(f"{part.name} at {part.root}: {table_rows}", markup=False, highlight=False, soft_wrap=True)
    if extras:
        data.train = combine_training_sets([data] + extras)
    pids = sorted({s.pid for s in data.train})
    label_of = {pid: i for i, pid in enumerate(pids)}
    from models.backbones import backbone_spec

    default_global, default_part = backbone_spec(arch).default_dims
    try:
        config = JointLossConfig(
            backbone=arch,
            last_stride=int(last_stride),
            global_dim=global_dim or default_global,
            part_dim=part_dim or default_part,
            num_parts=num_parts,
            use_global=not no_global,
            use_parts=not no_parts,
            part_mode=part_mode,
            loss_mode=loss_mode.replace("-", "_"),
            num_classes=len(pids),
            input_size=_parse_size(input_size),
            part_weight=part_weight,
        )
        config.validate()
        if resume:  # an imported trunk is rebuilt from the run's own graph description, not the IR file
            from models.checkpoint import load_checkpoint

            config.trunk_graph = load_checkpoint(out_path)[1].get("config", {}).get("trunk_graph")
        train_config = TrainConfig(
            epochs=epochs,
            p=batch_p,
            k=batch_k,
            lr=lr,
            weight_decay=weight_decay,
            warmup_epochs=warmup_epochs,
            schedule=schedule,
            milestones=milestone_list,
            amp=amp,
            eval_every=eval_every,
            workers=workers,
            seed=seed,
            max_iterations=iterations_per_epoch,
            freeze_early=freeze_early,
            preload=preload,
            head_lr_factor=head_lr_factor,
            wise_alpha=wise_alpha,
        )
        train_config.validate()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if len(pids) < batch_p:
        raise UsageError(f"--batch-p {batch_p} is more than the {len(pids)} training identities of {data.root}")
    loss = JointLoss(
        LossConfig(
            id_weight=id_weight,
            triplet_weight=triplet_weight,
            triplet_margin=None if soft_margin else margin,
            label_smoothing=label_smoothing,
            sparsity_weight=sparsity_weight,
            distill_weight=distill_weight,
        )
    )
    tag, estimate = _crop_pose(pose, device_name) if config.use_parts and part_mode == "pose" else (None, None)
    train_kp = _keypoints(data.train, data.root, tag, estimate, console, "train")
    query_kp = _keypoints(data.query, data.root, tag, estimate, console, "query")
    gallery_kp = _keypoints(data.gallery, data.root, tag, estimate, console, "gallery")
    targets, teacher_names = _teacher_targets(teacher, data.train, device_name, console)
    torch.manual_seed(seed)
    net = JointLossNet(
        config,
        pretrained_trunk=_imagenet_weights(
            arch, imagenet_path, pretrained and not (resume and config.trunk_graph is not None)
        ),
    )
    model_name = name or f"jointloss-{arch}-{data.name}"

    def evaluate(model):
        encoder = JointLossEncoder(model, model_name, "training", str(out_path), device_name, batch_size=128)
        report = evaluate_encoder(encoder, data, query_kp, gallery_kp)
        return report.result.as_dict()

    metadata = {
        "name": model_name,
        "dataset": data.name,
        "pose": tag or "none",
        "teachers": teacher_names,
        "training_data": "; ".join(f"{d.name} train ({d.root})" for d in [data] + extras),
        "command": "reid-app train " + " ".join(sys.argv[2:] if len(sys.argv) > 2 else []),
    }
    try:
        with _RichTrainProgress(console) as progress:
            result = run_training(
                net,
                data.train,
                [label_of[s.pid] for s in data.train],
                train_kp,
                train_config,
                loss,
                out_path,
                metadata,
                device_name,
                resume,
                evaluate,
                progress,
                teacher=targets,
            )
    except KeyboardInterrupt:
        console.print(
            f"reid-app: interrupted; {out} holds the last finished epoch - run the same command with "
            f"--resume to continue",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(130)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    stdout = stdout_console()
    last = result.history[-1] if result.history else {}
    stdout.print(
        f"trained {result.epochs_run} epoch(s) in {result.seconds:.0f} s on {device_name}; "
        f"final loss {last.get('loss', float('nan')):.4f}, id accuracy "
        f"{last.get('accuracy', float('nan')):.1%}; checkpoint: {out_path}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if result.metrics:
        stdout.print(
            _metrics_table(
                f"{model_name} on {data.name} (epoch {last.get('epoch')})", [("query/gallery", result.metrics)]
            )
        )


@click.command()
@click.option(
    "--dataset",
    required=True,
    type=click.Choice(DATASET_CHOICES, case_sensitive=False),
    help="Dataset layout (see README: Datasets).",
)
@click.option("--root", required=True, metavar="DIR", help="Dataset folder.")
@click.option(
    "--weights",
    default=None,
    metavar="CKPT|ONNX|IR",
    help="A reid-app checkpoint, an ONNX or an OpenVINO IR re-id model [default: the shipped model].",
)
@click.option("--rerank", is_flag=True, help="Also report k-reciprocal re-ranking (Zhong et al. 2017).")
@click.option("--flip", is_flag=True, help="Average each image's embedding with its mirror image's.")
@click.option("--device", default=None, metavar="auto|cpu|cuda[:N]", help="Where to run [default: auto].")
@click.option("--batch-size", type=int, default=128, show_default=True, help="Images per forward pass.")
@click.option(
    "--pose",
    default="auto",
    show_default=True,
    metavar="auto|none|WEIGHTS",
    help="Pose model for the part boxes of query/gallery images (cached beside the dataset).",
)
def evaluate(
    dataset: str, root: str, weights: str, rerank: bool, flip: bool, device: Optional[str], batch_size: int, pose: str
) -> None:
    """Evaluate a re-id model on a dataset's query/gallery split: CMC rank-1/5/10/20 and mAP.

    Standard protocol: gallery images with the query's identity and camera are excluded, Market-1501 junk images
    are ignored and distractors count as non-matches.
    """
    from common.weights import resolve_weights
    from models.encoders import load_encoder, resolve_device
    from models.evaluation import evaluate_encoder

    if batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {batch_size}")
    settings = command_settings()
    weights_path = None
    if weights is not None:
        resolved = resolve_weights(weights, settings.weights_dirs)
        if resolved.path is None:
            raise WeightsError(resolved.missing_message("re-id", "--weights"))
        weights_path = resolved.path
    device_name = resolve_device(device or settings.device)
    data = _load_dataset(dataset, root, ("query", "gallery"))
    encoder = load_encoder(weights_path, device_name, batch_size)
    console = stderr_console()
    tag, estimate = _crop_pose(pose, device_name) if encoder.num_parts in (2, 4, 6) else (None, None)
    query_kp = _keypoints(data.query, data.root, tag, estimate, console, "query")
    gallery_kp = _keypoints(data.gallery, data.root, tag, estimate, console, "gallery")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("embedding"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("embed", total=len(data.query) + len(data.gallery))
        report = evaluate_encoder(
            encoder,
            data,
            query_kp,
            gallery_kp,
            flip=flip,
            rerank=rerank,
            on_progress=lambda d, t: progress.update(task, completed=d, total=t),
        )
    rows = [("plain" + (" + flip" if flip else ""), report.result.as_dict())]
    if report.reranked is not None:
        rows.append(("k-reciprocal re-ranked", report.reranked.as_dict()))
    stdout = stdout_console()
    stdout.print(
        f"{report.num_query} queries ({report.result.num_queries} with a match), {report.num_gallery} gallery images",
        markup=False,
        highlight=False,
    )
    stdout.print(_metrics_table(f"{encoder.name} on {data.name}", rows))
    stdout.print(
        f"embedding took {report.seconds:.1f} s on {encoder.device} "
        f"({(report.num_query + report.num_gallery) / max(report.seconds, 1e-9):.0f} images/s)",
        markup=False,
        highlight=False,
    )


@click.command("export")
@click.option(
    "--weights",
    default=None,
    metavar="CKPT",
    help="A reid-app checkpoint ('reid-app train' output) [default: the shipped model].",
)
@click.option("--onnx", "onnx_path", default=None, metavar="OUT.onnx", help="ONNX file to write.")
@click.option(
    "--ir",
    "ir_path",
    default=None,
    metavar="OUT.xml",
    help="OpenVINO IR to write (FP16 weights; OUT.bin beside it): the fastest CPU inference.",
)
@click.option("--opset", type=int, default=17, show_default=True, help="ONNX opset (at least 16).")
def export_command(weights: Optional[str], onnx_path: Optional[str], ir_path: Optional[str], opset: int) -> None:
    """Export a checkpoint to ONNX or to an OpenVINO IR (dynamic batch), checked to agree with PyTorch.

    The model takes 'images' [N,3,H,W] (in the network's pixel convention, recorded in the file) and, with
    pose-guided parts, 'part_boxes' [N,P,4]; it gives 'descriptor' [N,D]. Use it with 'reid-app ingest --reid OUT'
    or 'reid-app evaluate --weights OUT'. The IR also records the model's name, clustering threshold and descriptor
    layout, as the shipped default does.
    """
    from models.encoders import build_jointloss_encoder

    if (onnx_path is None) == (ir_path is None):
        raise UsageError("give exactly one of --onnx OUT.onnx or --ir OUT.xml")
    if opset < 16:
        raise UsageError(f"--opset must be at least 16 (pixel-aligned RoiAlign), got {opset}")
    out = Path(onnx_path or ir_path)
    if not out.parent.exists():
        raise UsageError(f"{'--onnx' if onnx_path else '--ir'} {out}: folder {out.parent} does not exist")
    if ir_path is not None and out.suffix.lower() != ".xml":
        raise UsageError(f"--ir {ir_path} must name the IR's .xml file (its .bin is written beside it)")
    if weights is None:
        from models.default_model import default_checkpoint

        weights = str(default_checkpoint())
    if Path(weights).suffix.lower() in (".onnx", ".xml"):
        raise UsageError(f"--weights {weights} is already an exported model")
    if not Path(weights).is_file():
        raise WeightsError(f"re-id checkpoint {weights} does not exist")
    encoder = build_jointloss_encoder(weights)
    if ir_path is not None:
        from models.ir_export import export_ir

        ir = export_ir(encoder.net, out, encoder.name, encoder.clustering_threshold, encoder.checkpoint_hash)
        click.echo(
            f"wrote {ir.xml} and {ir.xml.with_suffix('.bin').name} ({ir.size_bytes / 1e6:.1f} MB): "
            f"descriptor [N, {ir.dims}]; OpenVINO agrees with PyTorch to cosine {ir.min_cosine:.5f} "
            f"(batch {ir.check_batch})"
        )
        return
    from models.export import export_onnx

    report = export_onnx(encoder.net, out, opset=opset)
    click.echo(
        f"wrote {report.path}: inputs {', '.join(report.inputs)} -> descriptor [N, {report.dims}]; "
        f"onnxruntime agrees with PyTorch to {report.max_abs_difference:.1e} (batch {report.check_batch})"
    )


COMMANDS = (train, evaluate, export_command)
