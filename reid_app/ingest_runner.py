"""Composing an ingest from the user's choices: validate options, resolve and load the detector, pose backend and
re-id model, then run ``pipelines.ingest``. Shared by the CLI and the desktop app (which gets it injected by the
CLI, the composition root), so both ingest exactly the same way.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Optional, Sequence

from reid_app.errors import UsageError, WeightsError
from reid_app.settings import Settings

log = logging.getLogger("reid_app")


@dataclass
class IngestChoices:
    """What the user chose for an ingest (None: the settings' default).

    Attributes:
        detector: YOLO weights (file, export folder or Ultralytics name).
        detector_size: longest side of the detector's input in pixels, a multiple of 32 in ``[160, 1920]``.
        pose: ``auto``, ``none``, YOLO pose weights, or ``mmpose:CONFIG:CHECKPOINT``.
        reid: re-id weights (reid-app checkpoint or ONNX), None: the settings' model.
        device: ``auto``, ``cpu``, ``cuda[:N]``.
        tracker: ``bytetrack``, ``botsort`` or ``botsort-reid`` (BoT-SORT with re-id embeddings of every box).
        analysis_fps: frames analysed per second of video, > 0.
        batch_size: crops per re-id forward pass, >= 1.
        crops_per_second: most crops encoded per track per second, > 0.
        duration_s: analyse only the first seconds of each video (None: all), > 0.
        force: re-ingest videos already in the database.
        static_after_s: a track whose box does not move for at least this many seconds is marked static (kept out
            of identities and search); 0 never marks one.
        motion_gate: analysed frames without motion skip detection (the last detections are tracked again).
        pose_interval_s: a tracked person's pose is estimated at most once per this many seconds (their keypoints
            follow the box in between), >= 0; 0: every analysed frame.
        tiles: 1: detect on whole frames; 2 to 4: also in ``tiles x tiles`` overlapping tiles (``models.tiling``,
            small and distant people; each frame costs ``1 + tiles**2`` detector inputs).
    """

    detector: Optional[str] = None
    detector_size: int = 640
    pose: str = "auto"
    reid: Optional[str] = None
    device: Optional[str] = None
    tracker: str = "botsort-reid"
    analysis_fps: float = 5.0
    batch_size: int = 32
    crops_per_second: float = 1.0
    duration_s: Optional[float] = None
    force: bool = False
    static_after_s: float = 10.0
    motion_gate: bool = True
    pose_interval_s: float = 0.4
    tiles: int = 1

    def check(self) -> None:
        """Raises:
            UsageError: a value out of range, named as the CLI option that sets it.
        """
        if not self.analysis_fps > 0:
            raise UsageError(f"--fps must be greater than 0 frames/s, got {self.analysis_fps:g}")
        if not (160 <= self.detector_size <= 1920 and self.detector_size % 32 == 0):
            raise UsageError(f"--detector-size must be a multiple of 32 from 160 to 1920 pixels, got "
                             f"{self.detector_size}")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1, got {self.batch_size}")
        if not self.crops_per_second > 0:
            raise UsageError(f"--crops-per-second must be greater than 0, got {self.crops_per_second:g}")
        if self.duration_s is not None and not self.duration_s > 0:
            raise UsageError(f"--duration must be greater than 0 seconds, got {self.duration_s:g}")
        if not self.static_after_s >= 0 or self.static_after_s == float("inf"):
            raise UsageError(f"--static-after must be 0 or more seconds, got {self.static_after_s:g}")
        if not self.pose_interval_s >= 0 or self.pose_interval_s == float("inf"):
            raise UsageError(f"--pose-interval must be 0 or more seconds, got {self.pose_interval_s:g}")
        if not 1 <= self.tiles <= 4:
            raise UsageError(f"--tiles must be from 1 (whole frames only) to 4, got {self.tiles}")
        if self.tracker not in ("bytetrack", "botsort", "botsort-reid"):
            raise UsageError(f"tracker '{self.tracker}' is not bytetrack, botsort or botsort-reid")


def _resolve_detector(spec: str, dirs):
    from reid_app.weights import resolve_weights

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

    from reid_app.weights import resolve_weights

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
    from models.pose import BatchingPose, DetectorKeypoints, MMPoseEstimator, NoPose, YoloTopDownPose
    from reid_app.settings import DEFAULT_POSE
    from reid_app.weights import resolve_weights

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
        log.warning("the default pose model %s could not be loaded (offline?): part boxes use fixed body ratios; "
                    "pass --pose PATH to a YOLO pose model for pose-guided parts", DEFAULT_POSE)
        return lambda tracker: NoPose()
    shared = BatchingPose(first)  # one pose model for every camera: their people share the mosaics
    return lambda tracker: DetectorKeypoints() if tracker.gives_keypoints else shared


class PreparedIngest:
    """Models loaded and checked for one ingest run; :meth:`run` ingests videos with them.

    Built by :func:`prepare_ingest`; loading happens there so bad weights fail before any camera starts.
    """

    def __init__(self, choices: IngestChoices, device: str, encoder, make_tracker, make_pose,
                 detector: str = "", pose: Optional[str] = None):
        from pipelines.ingest import IngestOptions
        from pipelines.motion import MotionGateConfig
        from pipelines.quality import StaticTrackConfig
        from pipelines.sampling import SamplingConfig

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
            analysis_fps=choices.analysis_fps, batch_size=choices.batch_size, force=choices.force,
            max_duration_s=choices.duration_s, static=StaticTrackConfig(min_duration_s=choices.static_after_s),
            motion=MotionGateConfig(enabled=choices.motion_gate), pose_interval_s=choices.pose_interval_s,
            sampling=SamplingConfig(crops_per_window=max(1, round(choices.crops_per_second * window)),
                                    window_s=window))

    def run(self, db, jobs: Sequence, progress, stop: threading.Event) -> list:
        """Ingest ``jobs`` (``pipelines.ingest.IngestJob``) into ``db``; returns one ``CameraSummary`` per job.

        Raises:
            UsageError: two jobs would get the same camera name.
        """
        from pipelines.ingest import ingest
        from storage.repository import set_ingest_models

        names = [j.camera for j in jobs]
        if len(set(names)) != len(names):
            raise UsageError(f"two videos would get the same camera name ({', '.join(names)}); name them with "
                             f"--camera")
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
        raise WeightsError(detector.missing_message(
            "detector", "--detector", extra=" and Ultralytics could not download it (offline?)")) from None
    # one detector for every camera: frames of all cameras are detected together; tracker state stays per camera
    shared = BatchingDetector(PersonDetector(weights, device=device, model=model, image_size=choices.detector_size))
    if choices.tiles > 1:
        from models.tiling import TiledDetector

        shared = TiledDetector(shared, choices.tiles)
    make_pose = _build_pose_factory(choices.pose, device, settings.weights_dirs, shared.gives_keypoints)

    def tracker_for():
        return PersonTracker(tracker=choices.tracker, detector=shared, encoder=encoder)

    return PreparedIngest(choices, device, encoder, tracker_for, make_pose, str(weights),
                          resolved_pose(choices.pose, settings.weights_dirs))


def load_query_encoder(db, settings: Settings, device: Optional[str] = None, reid: Optional[str] = None):
    """The re-id encoder for a search by a person image: ``reid`` when given, else the model the database's
    embeddings were made with (when its file exists), else the settings' model (the shipped one by default), so
    that the image lands in the database's vector space. ``device``: ``auto``/``cpu``/``cuda[:N]``.

    Raises:
        WeightsError: the weights are missing or unreadable.
    """
    from models.encoders import load_encoder, resolve_device
    from pipelines.service import database_model
    from reid_app.cli_helpers import resolve_reid

    path = database_model(db) if reid is None else None
    if path is None:
        path = resolve_reid(reid or settings.reid, settings.weights_dirs, explicit=reid is not None)
    return load_encoder(path, resolve_device(device or settings.device))
