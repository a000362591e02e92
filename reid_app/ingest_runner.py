"""Composing an ingest from the user's choices: validate options, resolve and load the detector, pose backend and
re-id model, then run ``pipelines.ingest.files``. Shared by the CLI and the desktop app (which gets it injected by the
CLI, the composition root), so both ingest exactly the same way.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from typing import Optional, Sequence

from common.errors import UsageError, WeightsError
from common.settings import Settings
from pipelines.ingest.choices import IngestChoices

log = logging.getLogger("reid_app")


def _resolve_detector(spec: str, dirs):
    from common.weights import resolve_weights

    resolved = resolve_weights(spec, dirs, allow_fetch_name=True)
    if resolved.path is None and resolved.fetch_name is None:
        raise WeightsError(resolved.missing_message("detector", "--detector"))
    return resolved


def _first_then_new(first, build):
    """A thread-safe factory that hands out ``first`` (built up front to validate the weights) once, then
    ``build()`` for every later caller: one model per camera, none loaded twice."""
    spare = [first]
    lock = threading.Lock()

    def factory(*_args):
        with lock:
            if spare:
                return spare.pop()
        return build()

    return factory


def resolved_pose(spec: str, dirs) -> str:
    """The ``--pose`` choice as recorded with a database: ``auto``, ``none`` and Ultralytics names as given, a file
    or folder that exists as its absolute path (also inside ``mmpose:CONFIG:CHECKPOINT``), like the detector."""
    from pathlib import Path

    from common.weights import resolve_weights

    spec = spec.strip()
    if spec in ("auto", "none"):
        return spec
    if spec.startswith("mmpose:"):
        return "mmpose:" + ":".join(str(Path(p).absolute()) if Path(p).exists() else p for p in spec.split(":")[1:])
    found = resolve_weights(spec, dirs, allow_fetch_name=True).path
    return str(Path(found).absolute()) if found is not None else spec


def _build_pose_factory(spec: str, device: str, dirs, detector_gives_keypoints: bool):
    """The pose backend per camera tracker. ``auto``: the detector's keypoints when it is a pose model, else the
    default pose model (``settings.DEFAULT_POSE``) top-down when its weights are found or downloadable, else none."""
    from common.settings import DEFAULT_POSE
    from common.weights import resolve_weights
    from models.pose import BatchingPose, DetectorKeypoints, MMPoseEstimator, NoPose, YoloTopDownPose

    spec = spec.strip()
    if spec == "none":
        return lambda tracker: NoPose()
    if spec.startswith("mmpose:"):
        parts = spec.split(":")
        if len(parts) != 3:
            raise UsageError(f"--pose '{spec}' must be mmpose:CONFIG:CHECKPOINT")

        def build():
            return MMPoseEstimator(parts[1], parts[2], device)

        return _first_then_new(build(), build)  # built now so bad weights fail before any camera starts
    if detector_gives_keypoints and spec == "auto":
        return lambda tracker: DetectorKeypoints()
    resolved = resolve_weights(DEFAULT_POSE if spec == "auto" else spec, dirs, allow_fetch_name=True)
    if resolved.path is None and resolved.fetch_name is None:
        raise WeightsError(resolved.missing_message("pose", "--pose"))
    weights = resolved.path or resolved.fetch_name
    try:
        first = YoloTopDownPose(weights, device)
    except WeightsError:
        if spec != "auto":
            raise
        log.warning(
            "the default pose model %s could not be loaded (offline?): part boxes use fixed body ratios; "
            "pass --pose PATH to a YOLO pose model for pose-guided parts",
            DEFAULT_POSE,
        )
        return lambda tracker: NoPose()
    shared = BatchingPose(first)  # one pose model for every camera: their people share the mosaics
    return lambda tracker: DetectorKeypoints() if tracker.gives_keypoints else shared


class PreparedIngest:
    """Models loaded and checked for one ingest run; :meth:`run` ingests videos with them.

    Built by :func:`prepare_ingest`; loading happens there so bad weights fail before any camera starts.
    """

    def __init__(
        self,
        choices: IngestChoices,
        device: str,
        encoder,
        make_tracker,
        make_pose,
        detector: str = "",
        pose: Optional[str] = None,
    ):
        from pipelines.ingest.files import IngestOptions
        from pipelines.ingest.motion import MotionGateConfig
        from pipelines.ingest.quality import StaticTrackConfig
        from pipelines.ingest.sampling import SamplingConfig

        self.choices = choices
        self.device = device
        self.encoder = encoder
        self.make_tracker = make_tracker
        self.make_pose = make_pose
        #: The detector weights as resolved (a path, or an Ultralytics name), recorded with the database.
        self.detector = detector
        #: The pose choice as resolved (``auto``/``none``, an absolute path, or ``mmpose:`` with absolute paths),
        #: recorded with the database so that an ingest from another folder finds the same weights.
        self.pose = pose or choices.pose
        window = max(1.0, 1.0 / choices.crops_per_second)
        self.options = IngestOptions(
            analysis_fps=choices.analysis_fps,
            batch_size=choices.batch_size,
            force=choices.force,
            max_duration_s=choices.duration_s,
            static=StaticTrackConfig(min_duration_s=choices.static_after_s),
            motion=MotionGateConfig(enabled=choices.motion_gate),
            pose_interval_s=choices.pose_interval_s,
            sampling=SamplingConfig(crops_per_window=max(1, round(choices.crops_per_second * window)), window_s=window),
        )

    def run(self, db, jobs: Sequence, progress, stop: threading.Event) -> list:
        """Ingest ``jobs`` (``pipelines.ingest.files.IngestJob``) into ``db``; returns one ``CameraSummary`` per job.

        Raises:
            UsageError: two jobs would get the same camera name.
        """
        from pipelines.ingest.files import ingest
        from storage.model_registry import set_ingest_models

        names = [j.camera for j in jobs]
        if len(set(names)) != len(names):
            raise UsageError(f"two videos would get the same camera name ({', '.join(names)}); name them with --camera")
        if self.detector:
            set_ingest_models(db, self.detector, self.pose)
        return ingest(db, list(jobs), self.encoder, self.make_tracker, self.make_pose, self.options, progress, stop)


def prepare_ingest(choices: IngestChoices, settings: Settings) -> PreparedIngest:
    """Resolve and load the models of an ingest (slow: seconds).

    Raises:
        UsageError: a choice is out of range.
        WeightsError: weights missing, unreadable or not downloadable.
    """
    from models.detection import BatchingDetector, PersonDetector, load_yolo
    from models.encoders import load_encoder, resolve_device
    from models.tracking import PersonTracker
    from reid_app.cli_helpers import resolve_reid

    choices.check()
    device = resolve_device(choices.device or settings.device)
    detector = _resolve_detector(choices.detector or settings.detector, settings.weights_dirs)
    reid_path = resolve_reid(choices.reid or settings.reid, settings.weights_dirs, explicit=choices.reid is not None)
    encoder = load_encoder(reid_path, device, choices.batch_size)
    weights = detector.path or detector.fetch_name
    try:
        model = load_yolo(weights)
    except WeightsError:
        if detector.path is not None:
            raise
        raise WeightsError(
            detector.missing_message(
                "detector", "--detector", extra=" and Ultralytics could not download it (offline?)"
            )
        ) from None
    # one detector for every camera: frames of all cameras are detected together; tracker state stays per camera
    shared = BatchingDetector(PersonDetector(weights, device=device, model=model, image_size=choices.detector_size))
    if choices.tiles > 1:
        from models.tiling import TiledDetector

        shared = TiledDetector(shared, choices.tiles)
    make_pose = _build_pose_factory(choices.pose, device, settings.weights_dirs, shared.gives_keypoints)

    def tracker_for():
        return PersonTracker(tracker=choices.tracker, detector=shared, encoder=encoder)

    return PreparedIngest(
        choices,
        device,
        encoder,
        tracker_for,
        make_pose,
        str(weights),
        resolved_pose(choices.pose, settings.weights_dirs),
    )


def with_site_model(choices: IngestChoices, db) -> IngestChoices:
    """``choices`` with ``reid`` set to the database's adapted model version when it has one current and no re-id
    model was chosen (``pipelines.adaptation.versions.adapted_model_file``): new footage must be encoded by the
    model the site searches with, or it cannot be matched."""
    if choices.reid is not None or db is None:
        return choices
    from pipelines.adaptation.versions import adapted_model_file

    path = adapted_model_file(db)
    return choices if path is None else replace(choices, reid=str(path))


def load_query_encoder(db, settings: Settings, device: Optional[str] = None, reid: Optional[str] = None):
    """The re-id encoder for a search by a person image: ``reid`` when given, else the model the database's
    embeddings were made with (when its file exists), else the settings' model (the shipped one by default), so
    that the image lands in the database's vector space. ``device``: ``auto``/``cpu``/``cuda[:N]``.

    Raises:
        WeightsError: the weights are missing or unreadable.
    """
    from models.encoders import load_encoder, resolve_device
    from pipelines.matching.service import database_model
    from reid_app.cli_helpers import resolve_reid

    path = database_model(db) if reid is None else None
    if path is None:
        path = resolve_reid(reid or settings.reid, settings.weights_dirs, explicit=reid is not None)
    return load_encoder(path, resolve_device(device or settings.device))
