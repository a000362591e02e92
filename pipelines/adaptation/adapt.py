"""``reid-app adapt``: fine-tune a site's current re-id model on the site's own footage, without labels (issue 31).

After Li, Zhu and Gong, "Unsupervised Person Re-identification by Deep Learning Tracklet Association" (ECCV 2018)
and "Unsupervised Tracklet Person Re-Identification" (TPAMI 2019, UTAL); the losses are in ``models.adaptation``.

1. **Tracklets** (``pipelines.adaptation.tracklets``): each track is a class of its camera's classifier; up to
   ``samples`` of its encoded sightings are cut again from the source footage at the stored boxes, at full
   resolution (``pipelines.adaptation.crops``).
2. **Held out**: every ``held_out_every``-th confirmed and rejected pair and every ``negatives_held_out_every``-th
   cross-camera pair the site rules out are kept away from training, for the check (``pipelines.adaptation.check``).
3. **Teacher and associations**: the starting model encodes the crops (the distillation targets); tracklets of two
   cameras that are each other's nearest above ``threshold`` are one pseudo identity, as are the confirmed pairs;
   known negatives never are.
4. **Training** (``models.training.train`` with ``models.adaptation.TrackletAssociationLoss``) for ``iterations``
   batches or until the time budget ends, checkpointed every epoch (``--resume`` continues).
5. **Version**: the adapted network is saved as a reid-app checkpoint and an OpenVINO IR beside the database
   (``common.settings.site_models_dir_for``) and registered as a new model. It becomes current only when the check
   is no worse than the starting model's (``pipelines.adaptation.versions.make_current``: re-encode, switch,
   re-cluster); otherwise it stays registered, unused, and ``reid-app models use`` can still choose it.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

import cv2
import numpy as np

from common.errors import UsageError, setting
from common.settings import site_models_dir_for
from pipelines.adaptation.check import AgreementCheck, agreement, got_worse, split_held_out
from pipelines.adaptation.crops import cut_crops
from pipelines.adaptation.options import AdaptOptions, AdaptProgress
from pipelines.adaptation.tracklets import TrackletSet, site_tracklets
from pipelines.adaptation.versions import MakeCurrentReport, make_current
from pipelines.ingest.engine import register_encoder
from storage.database import Database
from storage.model_registry import get_model
from storage.model_versions import all_models, current_model_id, set_version_info
from storage.vector_index import database_id

#: Marks a work folder as made by ``reid-app adapt`` (only such a folder is ever deleted).
PLAN_FILE = "plan.json"


@dataclass
class AdaptReport:
    """What :func:`adapt_site` did.

    Attributes:
        start_model / version_model: the model adapted and the version made (None: stopped before it was made).
        tracklets, cameras, images: what it trained on. associated: tracklets joined across cameras
            (association rate = associated / tracklets). pseudo_identities: groups trained as one person each.
        confirmed_used / negatives_used: verdicts and rule pairs trained on; held_out: pairs kept for the check.
        before / after: the check of the starting and of the adapted model. worse: why it got worse (empty: not).
        iterations, training_seconds: training done; stopped: the user stopped it (``--resume`` continues).
        made_current: the switch (None: the version was not made current; :attr:`not_current_because` says why).
        files: the version's checkpoint and IR. seconds: wall time.
    """

    start_model: int
    version_model: Optional[int] = None
    tracklets: int = 0
    cameras: int = 0
    images: int = 0
    associated: int = 0
    pseudo_identities: int = 0
    confirmed_used: int = 0
    negatives_used: int = 0
    held_out: int = 0
    before: Optional[AgreementCheck] = None
    after: Optional[AgreementCheck] = None
    worse: list[str] = field(default_factory=list)
    iterations: int = 0
    training_seconds: float = 0.0
    stopped: bool = False
    made_current: Optional[MakeCurrentReport] = None
    not_current_because: str = ""
    files: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def association_rate(self) -> float:
        """Fraction of tracklets associated with another camera's."""
        return self.associated / self.tracklets if self.tracklets else 0.0


def trainable_checkpoint(source: str) -> Path:
    """The reid-app checkpoint (``.pt``) behind a model file: the file itself, or the ``.pt`` of the same name
    beside an OpenVINO IR (as the shipped model and every adapted version have).

    Raises:
        UsageError: no such checkpoint (an ONNX or foreign model cannot be fine-tuned here).
    """
    path = Path(source) if source else None
    if path is not None and path.suffix == ".pt" and path.is_file():
        return path
    if path is not None and path.with_suffix(".pt").is_file():
        return path.with_suffix(".pt")
    raise UsageError(
        f"the site's model {source or '(file unknown)'} has no reid-app checkpoint (.pt) beside it, so it cannot be "
        "adapted; ingest with the shipped model or a 'reid-app train' checkpoint"
    )


def adapt_site(
    db: Database,
    options: AdaptOptions = AdaptOptions(),
    progress: Optional[AdaptProgress] = None,
    stop: Callable[[], bool] = lambda: False,
    resume: bool = False,
    make_current_when_better: bool = True,
) -> AdaptReport:
    """Adapt the current model of ``db`` to the site (module docstring).

    Args:
        resume: continue the interrupted adaptation of the same model with the same settings.
        make_current_when_better: re-encode with the version and make it current when its check passed.
        stop: polled between batches; True stops training (resumable) or re-encoding (resumable).

    Returns:
        An :class:`AdaptReport`.

    Raises:
        UsageError: no embeddings; too few tracklets; the model has no trainable checkpoint; ``resume`` without an
            interrupted run of the same model and settings; re-encoding errors (``make_current``).
    """

    from models.adaptation import TrackletAssociationLoss, associate_tracklets, pseudo_identities, tracklet_features
    from models.checkpoint import load_checkpoint
    from models.configs import JointLossConfig
    from models.datasets import ReidSample
    from models.encoders import JointLossEncoder, load_encoder
    from models.jointloss import JointLossNet
    from models.training import TrainProgress, backbone_state, interpolate_backbone, train

    options.check()
    progress = progress or AdaptProgress()
    started = time.monotonic()
    deadline = started + 60.0 * options.minutes
    start_id = current_model_id(db)
    if start_id is None:
        raise UsageError(f"{db.location} holds no embeddings yet; run 'reid-app ingest' first")
    start = get_model(db, start_id)
    checkpoint = trainable_checkpoint(start.source or "")
    report = AdaptReport(start_id)

    progress.stage("reading the site's tracklets")
    tracklets = site_tracklets(db, start_id, options.samples, options.min_sightings, options.max_crops // 2)
    if len(tracklets.tracklets) * options.samples > options.max_crops:
        samples = max(2, options.max_crops // max(len(tracklets.tracklets), 1))
        tracklets = site_tracklets(db, start_id, samples, options.min_sightings, options.max_crops // 2)
    if len(tracklets.tracklets) < 4:
        raise UsageError(
            f"{db.location} has {len(tracklets.tracklets)} tracks with {options.min_sightings}+ encoded sightings; "
            "adaptation needs at least 4 (ingest more footage)"
        )
    folder = site_models_dir_for(db.location, database_id(db))
    work = folder / f"work-from-model-{start_id}"
    plan = {
        "start_model": start_id,
        "start_hash": start.checkpoint_hash,
        "sightings": hashlib.sha256(
            json.dumps([[t.track_id, [s.id for s in t.sightings]] for t in tracklets.tracklets]).encode()
        ).hexdigest(),
        "verdicts": [sorted(tracklets.positives), sorted(tracklets.rejected)],
        "options": options.training_key(),
    }
    plan_text = json.dumps(plan, sort_keys=True, default=list)
    if not resume and (work / "train.pt").is_file():
        progress.message("an interrupted adaptation of this model is started over (--resume would continue it)")
    _prepare_work(work, plan_text, resume)

    images, keypoints, image_tracklet = _cut_training_crops(tracklets, work, progress, stop)
    if stop():
        report.stopped = True
        return report
    kept = np.unique(image_tracklet)
    if len(kept) < 4:
        raise UsageError(
            f"the footage of {db.location} could be read for {len(kept)} tracks only (moved or deleted videos?); "
            "adaptation needs at least 4"
        )
    cameras = np.array([t.camera_id for t in tracklets.tracklets], np.int64)
    report.tracklets, report.cameras, report.images = len(kept), len(set(cameras[kept].tolist())), len(images)

    pairs = split_pairs(tracklets, cameras, set(kept.tolist()), options)
    report.confirmed_used, report.negatives_used = len(pairs.confirmed_train), len(pairs.negatives_train)
    report.held_out = len(pairs.confirmed_held) + len(pairs.negatives_held)

    state, metadata = load_checkpoint(checkpoint)
    config = JointLossConfig.from_dict(metadata["config"])
    config.num_classes = len(tracklets.tracklets)
    net = JointLossNet(config, pretrained_trunk=False)
    net.load_state_dict({k: v.float() for k, v in state.items() if "classifier" not in k}, strict=False)
    net.eval()
    start_backbone = backbone_state(net)  # from the starting checkpoint: the same on a resumed run

    def encode(model, text: str) -> np.ndarray:
        progress.stage(text, len(images))
        encoder = JointLossEncoder(model, start.name, start.checkpoint_hash, str(checkpoint), options.device, 64)
        out = []
        for begin in range(0, len(images), 64):
            crops = [cv2.imread(str(p)) for p in images[begin : begin + 64]]
            kps = keypoints[begin : begin + 64]
            boxes = np.stack([_boxes(kp, crop, encoder.num_parts) for kp, crop in zip(kps, crops)])
            out.append(encoder.encode(crops, boxes))
            progress.advance(min(begin + 64, len(images)))
        return np.concatenate(out) if out else np.zeros((0, model.config.dims), np.float32)

    teacher_file = work / "teacher.npy"
    encode_started = time.monotonic()
    if resume and teacher_file.is_file() and np.load(teacher_file).shape[0] == len(images):
        teacher = np.load(teacher_file)
    else:
        teacher = encode(net, "encoding the crops with the starting model")
        np.save(teacher_file, teacher)
    encode_seconds = time.monotonic() - encode_started
    features_before = tracklet_features(teacher, image_tracklet, len(tracklets.tracklets))
    report.before = agreement(features_before, cameras, pairs.confirmed_held, pairs.negatives_held)

    excluded = set(pairs.negatives_train) | set(pairs.same_camera)  # never the held-out pairs: no leak
    sub = kept  # tracklets with crops only: associate among them
    pairs_local = associate_tracklets(features_before[sub], cameras[sub], options.threshold, _local(excluded, sub))
    associations = [(int(sub[a]), int(sub[b])) for a, b in pairs_local]
    report.associated = len({t for pair in associations for t in pair})
    identities = pseudo_identities(len(tracklets.tracklets), associations + pairs.confirmed_train)
    groups = len(set(identities[image_tracklet].tolist()))
    report.pseudo_identities = groups
    if groups < 2:
        raise UsageError(f"{db.location} gives {groups} pseudo identity; adaptation needs at least 2 people")
    progress.message(
        f"{report.tracklets} tracklets on {report.cameras} cameras, {len(images)} crops; {report.associated} "
        f"associated across cameras ({100 * report.association_rate:.0f}%); {report.held_out} pairs held out"
    )

    p = min(16, groups)
    per_epoch = max(1, groups // p)
    train_config = options.train_config(max(1, math.ceil(options.iterations / per_epoch)), p)
    loss = TrackletAssociationLoss(
        options.loss_config(),
        cameras,
        identities,
        known_negatives=pairs.negatives_train,
    )
    # the check's encoding, the export and the registration; at most half of what is left of a short budget
    reserve = min(1.2 * encode_seconds + 20.0, 0.5 * max(deadline - time.monotonic(), 0.0))
    timed_out = []

    def stop_training() -> bool:
        if stop():
            return True
        if time.monotonic() > deadline - reserve:
            timed_out.append(True)
            return True
        return False

    class Forward(TrainProgress):
        done = 0

        def on_epoch_start(self, epoch, epochs, iterations):
            if epoch == 1 or self.done == 0:
                progress.stage("adapting", train_config.epochs * per_epoch)

        def on_iteration(self, stats):
            self.done += 1
            report.iterations += 1
            progress.advance(
                self.done, {"loss": stats.get("loss", float("nan")), "associated": report.association_rate}
            )

        def on_message(self, text):
            if timed_out and text.startswith("stopped during epoch"):
                text = f"the time budget is reached after {report.iterations} batches; finishing with them"
            progress.message(text)

    train_file = work / "train.pt"
    result = train(
        net,
        [ReidSample(Path(p), int(t), int(cameras[t])) for p, t in zip(images, image_tracklet)],
        image_tracklet.tolist(),
        keypoints,
        train_config,
        loss,
        train_file,
        {"name": f"{start.name}-adapting"},
        options.device,
        resume=resume and train_file.is_file(),
        progress=Forward(),
        stop=stop_training,
        teacher=teacher,
        sample_groups=identities[image_tracklet].tolist(),
    )
    report.training_seconds = result.seconds
    if stop() and not timed_out:
        report.stopped = True
        progress.message("stopped; run 'reid-app adapt --resume' to continue")
        return report
    if report.iterations == 0 and not result.history:
        raise UsageError(
            f"the time budget ({options.minutes:g} min) ended before training began (reading the site took "
            f"{(time.monotonic() - started) / 60:.1f} min); give {setting('minutes')} more, or --resume"
        )
    net.eval()
    if options.wise_alpha < 1.0:
        interpolate_backbone(net, start_backbone, options.wise_alpha)
    adapted = encode(net, "checking the adapted model")
    features_after = tracklet_features(adapted, image_tracklet, len(tracklets.tracklets))
    report.after = agreement(features_after, cameras, pairs.confirmed_held, pairs.negatives_held)
    report.worse = got_worse(report.before, report.after)

    progress.stage("saving the new model version")
    facts = {
        "tracklets": report.tracklets,
        "cameras": report.cameras,
        "images": report.images,
        "associated": report.associated,
        "pseudo_identities": groups,
        "iterations": report.iterations,
        "check_before": report.before.as_dict(),
        "check_after": report.after.as_dict(),
    }
    pt, xml = _save_version(db, net, start, metadata, folder, dict(facts, options=options.training_key()))
    report.files = [str(pt), str(xml)]
    encoder = load_encoder(xml, options.device)
    version = register_encoder(db, encoder)
    report.version_model = version
    set_version_info(
        db,
        version,
        dict(
            facts,
            adapted_from=start_id,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            worse=report.worse,
            state="made",
            checkpoint=str(pt),
        ),
    )
    shutil.rmtree(work, ignore_errors=True)  # ours (it holds our plan file); the version is saved
    if report.worse:
        report.not_current_because = "its check got worse: " + "; ".join(report.worse)
    elif not report.before.measured:
        report.not_current_because = (
            "nothing was held out to check it against (no verdicts, and no pairs the site rules out)"
        )
    elif not make_current_when_better:
        report.not_current_because = "asked not to make it current"
    if report.not_current_because:
        set_version_info(db, version, {"state": "not current"})
    else:
        progress.stage("re-encoding the site's sightings with the new version")
        report.made_current = make_current(
            db, version, encoder, lambda done, total: progress.advance(done, {"total": total}), stop, options.device
        )
        if report.made_current.switch is None:
            report.not_current_because = "re-encoding was stopped; 'reid-app models use {version}' finishes it"
    report.seconds = time.monotonic() - started
    return report


@dataclass(frozen=True)
class PairSplit:
    """The pairs a site knows, split between training and the check (tracklet index pairs ``(i, j)``, ``i < j``).

    Attributes:
        confirmed_train / confirmed_held: investigators' confirmations.
        negatives_train / negatives_held: rejections and cross-camera pairs the site's rules give.
        same_camera: pairs seen at once on one camera (always trained on: the per-camera premise).
    """

    confirmed_train: list
    confirmed_held: list
    negatives_train: list
    negatives_held: list
    same_camera: list


def split_pairs(tracklets: TrackletSet, cameras: np.ndarray, present: set, options: AdaptOptions) -> PairSplit:
    """Hold out every ``held_out_every``-th confirmed and rejected pair and every ``negatives_held_out_every``-th
    cross-camera rule pair (``pipelines.adaptation.check.split_held_out``); pairs of tracklets not in ``present``
    (no crops could be cut) are dropped."""
    rules = sorted(tracklets.negatives - tracklets.rejected)
    cross = [(a, b) for a, b in rules if cameras[a] != cameras[b]]
    confirmed_train, confirmed_held = split_held_out(sorted(tracklets.positives), options.held_out_every)
    rejected_train, rejected_held = split_held_out(sorted(tracklets.rejected), options.held_out_every)
    cross_train, cross_held = split_held_out(cross, options.negatives_held_out_every)

    def usable(pairs):
        return [(a, b) for a, b in pairs if a in present and b in present]

    return PairSplit(
        usable(confirmed_train),
        usable(confirmed_held),
        usable(rejected_train + cross_train),
        usable(rejected_held + cross_held),
        [(a, b) for a, b in rules if cameras[a] == cameras[b]],
    )


def _save_version(db: Database, net, start, metadata: dict, folder: Path, facts: dict) -> tuple[Path, Path]:
    """Write the adapted network as ``<root>-site<N>``: a reid-app checkpoint (float16, no tracklet classifiers,
    the starting model's metadata and clustering threshold, what adaptation did) and its OpenVINO IR, in
    ``folder``. Returns ``(checkpoint, IR .xml)``.

    Raises:
        common.errors.WeightsError: the IR disagrees with PyTorch (``models.ir_export.export_ir``).
    """
    from models.checkpoint import file_sha256, save_checkpoint
    from models.ir_export import export_ir

    number = 1 + sum(1 for m in all_models(db) if "-site" in m.name)
    name = f"{start.name.split('-site')[0]}-site{number}"
    folder.mkdir(parents=True, exist_ok=True)
    threshold = metadata.get("clustering_threshold")
    shipped = {  # float16 like the shipped checkpoint, without the site's tracklet classifiers
        k: (v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu())
        for k, v in net.state_dict().items()
        if "classifier" not in k
    }
    version_meta = dict(
        metadata,
        name=name,
        config=dict(net.config.to_dict(), num_classes=0),
        clustering_threshold=threshold,
        storage="float16",
        adapted_from={"name": start.name, "checkpoint_hash": start.checkpoint_hash},
        adaptation=facts,
    )
    pt = folder / f"{name}.pt"
    save_checkpoint(pt, shipped, version_meta)
    xml = folder / f"{name}.xml"
    export_ir(net, xml, name, threshold, file_sha256(pt))
    return pt, xml


def _prepare_work(work: Path, plan_text: str, resume: bool) -> None:
    """Check or start the work folder: with ``resume`` it must hold the same plan; without, an old folder of
    ours is replaced (a folder without our plan file is never deleted)."""
    plan_file = work / PLAN_FILE
    if resume:
        if not plan_file.is_file():
            raise UsageError(f"there is no interrupted adaptation to resume ({work} holds none); run without --resume")
        if plan_file.read_text() != plan_text:
            raise UsageError(
                "the interrupted adaptation was of other tracks, verdicts or settings; run without --resume to "
                "start again"
            )
        return
    if work.exists():
        if not plan_file.is_file():
            raise UsageError(f"{work} exists and was not made by 'reid-app adapt'; move it away")
        shutil.rmtree(work)
    (work / "crops").mkdir(parents=True)
    plan_file.write_text(plan_text)


def _cut_training_crops(
    tracklets: TrackletSet, work: Path, progress: AdaptProgress, stop: Callable[[], bool]
) -> tuple[list[Path], np.ndarray, np.ndarray]:
    """Cut (or, resumed, reuse) every sampled sighting's crop into ``work/crops``.

    Returns:
        ``(image files, float32 [N, 17, 3] keypoints in crop pixels (NaN: none), int64 [N] tracklet index)``.
    """
    by_video: dict[str, list] = {}
    owner = {}
    for index, tracklet in enumerate(tracklets.tracklets):
        for s in tracklet.sightings:
            by_video.setdefault(tracklet.video_path, []).append(s)
            owner[s.id] = index
    total = sum(len(v) for v in by_video.values())
    progress.stage("cutting crops from the footage", total)
    found: dict[int, tuple[Path, np.ndarray]] = {}
    done = 0
    for video, sightings in by_video.items():
        if stop():
            break
        try:
            for crop in cut_crops(video, sightings):
                path = work / "crops" / f"{crop.sighting.id}.jpg"
                kp_path = path.with_suffix(".npy")
                if not path.is_file():
                    cv2.imwrite(str(path), crop.image, [cv2.IMWRITE_JPEG_QUALITY, 95])
                    np.save(kp_path, np.full((17, 3), np.nan, np.float32) if crop.keypoints is None else crop.keypoints)
                found[crop.sighting.id] = (path, np.load(kp_path))
        except Exception as exc:  # noqa: BLE001 - a damaged or missing video costs its tracks, not the run
            progress.message(f"skipped {Path(video).name}: {exc}")
        done += len(sightings)
        progress.advance(done)
    images, keypoints, owners = [], [], []
    for sid in sorted(found, key=lambda s: (owner[s], s)):
        path, kp = found[sid]
        images.append(path)
        keypoints.append(kp)
        owners.append(owner[sid])
    counts = np.bincount(np.array(owners, np.int64), minlength=len(tracklets.tracklets)) if owners else np.zeros(0)
    keep = [i for i, t in enumerate(owners) if counts[t] >= 2]  # one crop cannot be sampled K times apart
    return (
        [images[i] for i in keep],
        np.stack([keypoints[i] for i in keep]).astype(np.float32) if keep else np.zeros((0, 17, 3), np.float32),
        np.array([owners[i] for i in keep], np.int64),
    )


def _boxes(keypoints: np.ndarray, crop: np.ndarray, num_parts: int) -> np.ndarray:
    from models.parts import part_boxes_from_keypoints

    kp = None if np.isnan(keypoints).all() else keypoints
    boxes, _ = part_boxes_from_keypoints(kp, crop.shape[0], crop.shape[1], num_parts=num_parts)
    return boxes


def _local(pairs, subset: np.ndarray) -> list[tuple[int, int]]:
    """``pairs`` of tracklet indices renumbered to positions in ``subset`` (pairs outside it dropped)."""
    position = {int(t): i for i, t in enumerate(subset)}
    return [(position[a], position[b]) for a, b in pairs if a in position and b in position]
