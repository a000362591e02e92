"""What a user chose for an ingest (or a live watch), validated once: the value object the CLI, the desktop app
and the cluster runners hand to ``reid_app.ingest_runner.prepare_ingest``. It lives here, below the app and the
CLI, so that the desktop app (``ui``) can build one without importing the command-line floor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from common.errors import UsageError, setting


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
            raise UsageError(f"{setting('fps')} must be greater than 0 frames/s, got {self.analysis_fps:g}")
        if not (160 <= self.detector_size <= 1920 and self.detector_size % 32 == 0):
            raise UsageError(
                f"{setting('detector_size')} must be a multiple of 32 from 160 to 1920 pixels, got {self.detector_size}"
            )
        if self.batch_size < 1:
            raise UsageError(f"{setting('batch_size')} must be at least 1, got {self.batch_size}")
        if not self.crops_per_second > 0:
            raise UsageError(f"{setting('crops_per_second')} must be greater than 0, got {self.crops_per_second:g}")
        if self.duration_s is not None and not self.duration_s > 0:
            raise UsageError(f"{setting('duration')} must be greater than 0 seconds, got {self.duration_s:g}")
        if not self.static_after_s >= 0 or self.static_after_s == float("inf"):
            raise UsageError(f"{setting('static_after')} must be 0 or more seconds, got {self.static_after_s:g}")
        if not self.pose_interval_s >= 0 or self.pose_interval_s == float("inf"):
            raise UsageError(f"{setting('pose_interval')} must be 0 or more seconds, got {self.pose_interval_s:g}")
        if not 1 <= self.tiles <= 4:
            raise UsageError(f"{setting('tiles')} must be from 1 (whole frames only) to 4, got {self.tiles}")
        if self.tracker not in ("bytetrack", "botsort", "botsort-reid"):
            raise UsageError(f"tracker '{self.tracker}' is not bytetrack, botsort or botsort-reid")
