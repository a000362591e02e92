"""The ``reid-app`` command line; the composition root that wires settings, models, pipelines and storage.

User mistakes end with one line on stderr (``reid-app: error: ...``) and a non-zero exit code, never a traceback:
2 for bad options, paths, weights or databases; 1 when some videos failed while others were ingested; 130 when
interrupted.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path
from typing import Optional, Sequence

import click

from reid_app import __version__
from reid_app.errors import ReidAppError, UsageError, WeightsError
from reid_app.console import stderr_console, stdout_console
from reid_app.settings import load_settings
from reid_app.cli_helpers import cluster_after_ingest, parse_start_time, resolve_reid
from reid_app.matching_cli import COMMANDS as MATCHING_COMMANDS
from reid_app.training_cli import COMMANDS as TRAINING_COMMANDS

EXIT_FAILED_VIDEOS = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130

log = logging.getLogger("reid_app")


def _setup_logging(verbose: bool) -> None:
    os.environ.setdefault("YOLO_VERBOSE", "False")  # ultralytics prints model-loading chatter otherwise
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("reid-app: %(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    logging.getLogger("ultralytics").setLevel(logging.WARNING if not verbose else logging.INFO)


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


def _build_pose_factory(spec: str, device: str, dirs):
    from models.pose import DetectorKeypoints, MMPoseEstimator, NoPose, YoloTopDownPose
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
    if spec == "auto":
        def auto(tracker):
            if tracker.gives_keypoints:
                return DetectorKeypoints()
            log.warning("the detector is not a pose model: part boxes use fixed body ratios; pass --pose PATH to "
                        "a YOLO pose model for pose-guided parts")
            return NoPose()
        return auto
    resolved = resolve_weights(spec, dirs, allow_fetch_name=True)
    if resolved.path is None and resolved.fetch_name is None:
        raise WeightsError(resolved.missing_message("pose", "--pose"))
    weights = resolved.path or resolved.fetch_name
    top_down = _first_then_new(YoloTopDownPose(weights, device), lambda: YoloTopDownPose(weights, device))
    return lambda tracker: DetectorKeypoints() if tracker.gives_keypoints else top_down()


class _RichProgress:
    """Progress bars per camera on stderr, implementing ``pipelines.ingest.IngestProgress``."""

    def __init__(self, console):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console
        self.progress = Progress(TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("frames"), TimeElapsedColumn(), console=console, transient=False)
        self.tasks: dict[str, int] = {}

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()

    def on_start(self, summary, total_frames):
        self.tasks[summary.camera] = self.progress.add_task(summary.camera, total=total_frames)

    def on_advance(self, camera, frames_analysed):
        task = self.tasks.get(camera)
        if task is not None:
            total = self.progress.tasks[task].total or 0
            self.progress.update(task, completed=frames_analysed, total=max(total, frames_analysed))

    def on_finish(self, summary):
        task = self.tasks.get(summary.camera)
        if task is not None and summary.status == "done":
            self.progress.update(task, total=summary.frames_analysed, completed=summary.frames_analysed)
        if summary.status == "failed":
            self.progress.console.print(f"reid-app: error: {summary.message}", markup=False, highlight=False, soft_wrap=True)
        elif summary.status == "skipped":
            self.progress.console.print(f"reid-app: {summary.message}", markup=False, highlight=False, soft_wrap=True)

    def on_message(self, text):
        self.progress.console.print(f"reid-app: {text}", markup=False, highlight=False, soft_wrap=True)


def _summary_table(summaries):
    from rich.table import Table

    table = Table(title="Ingest summary")
    for name, justify in (("camera", "left"), ("status", "left"), ("frames", "right"), ("tracks", "right"),
                          ("sightings", "right"), ("embeddings", "right"), ("seconds", "right"),
                          ("frames/s", "right"), ("note", "left")):
        table.add_column(name, justify=justify, overflow="fold")
    for s in summaries:
        table.add_row(s.camera, s.status, str(s.frames_analysed), str(s.tracks), str(s.sightings),
                      str(s.embeddings), f"{s.seconds:.1f}", f"{s.frames_per_second:.1f}", s.message)
    return table


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reid-app")
@click.option("-v", "--verbose", is_flag=True, help="Print informational messages too.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """reid-app: find the same person across many cameras.

    Ingest footage with 'reid-app ingest cam1.mp4 cam2.mp4', then search it with 'reid-app search'.
    Train and measure the re-id network with 'reid-app train', 'reid-app evaluate' and 'reid-app export'.
    """
    _setup_logging(verbose)
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


@cli.command()
@click.argument("videos", nargs=-1, required=True, metavar="VIDEO [VIDEO ...]")
@click.option("--db", "db_path", metavar="PATH", help="Database file (default: reid.db in your user data folder, "
              "or $REID_APP_DB). Created when missing.")
@click.option("--camera", "cameras", multiple=True, metavar="NAME",
              help="Camera name, once per video in the same order (default: each file's name without extension).")
@click.option("--device", default=None, metavar="auto|cpu|cuda[:N]", help="Where the re-id network runs "
              "[default: auto = the first GPU when present, else cpu].")
@click.option("--fps", "fps", type=str, default="5", show_default=True, metavar="RATE",
              help="Frames analysed per second of video (never more than the video's own rate).")
@click.option("--detector", default=None, metavar="WEIGHTS", help="YOLO person detector: a .pt file, an export "
              "folder (OpenVINO...) or an Ultralytics name [default: yolov8n-pose; a pose model gives keypoints "
              "for free].")
@click.option("--pose", default="auto", show_default=True, metavar="auto|none|WEIGHTS|mmpose:CFG:CKPT",
              help="Pose backend: auto uses the detector's keypoints when it is a pose model; WEIGHTS runs a "
              "YOLO pose model top-down on each person; mmpose needs mmpose installed.")
@click.option("--reid", default=None, metavar="WEIGHTS", help="Re-id model: a reid-app checkpoint (.pt) or any "
              "ONNX re-id model [N,3,H,W]->[N,D] [default: the joint-loss network].")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Crops per re-id forward pass.")
@click.option("--start", "starts", multiple=True, metavar="TIME", help="Wall-clock start of each video (ISO 8601 "
              "or epoch seconds), once per video [default: the container's creation time, else 0].")
@click.option("--duration", type=float, default=None, metavar="SECONDS",
              help="Analyse only the first SECONDS of each video.")
@click.option("--tracker", type=click.Choice(["bytetrack", "botsort"]), default="bytetrack", show_default=True,
              help="Within-camera tracker.")
@click.option("--crops-per-second", type=float, default=1.0, show_default=True,
              help="Most crops encoded per track per second (best quality first); bounds re-id cost.")
@click.option("--force", is_flag=True, help="Re-ingest videos already in the database, replacing their rows.")
def ingest(videos: Sequence[str], db_path: Optional[str], cameras: Sequence[str], device: Optional[str], fps: str,
           detector: Optional[str], pose: str, reid: Optional[str], batch_size: int, starts: Sequence[str],
           duration: Optional[float], tracker: str, crops_per_second: float, force: bool) -> None:
    """Detect, track, pose-estimate and encode every person in VIDEOs and store them in the database.

    Each video is one camera. Videos already in the database are skipped (see --force); an interrupted run is
    completed by running the same command again.
    """
    settings = load_settings()
    try:
        rate = float(fps)
    except ValueError:
        raise UsageError(f"--fps '{fps}' is not a number") from None
    if not rate > 0:
        raise UsageError(f"--fps must be greater than 0 frames/s, got {fps}")
    if batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {batch_size}")
    if crops_per_second <= 0:
        raise UsageError(f"--crops-per-second must be greater than 0, got {crops_per_second}")
    if duration is not None and duration <= 0:
        raise UsageError(f"--duration must be greater than 0 seconds, got {duration}")
    if cameras and len(cameras) != len(videos):
        raise UsageError(f"--camera was given {len(cameras)} times for {len(videos)} videos; give one per video")
    if starts and len(starts) != len(videos):
        raise UsageError(f"--start was given {len(starts)} times for {len(videos)} videos; give one per video")
    start_times = [parse_start_time(s) for s in starts] or [None] * len(videos)

    from models.encoders import resolve_device
    from pipelines.ingest import IngestJob, IngestOptions
    from pipelines.sampling import SamplingConfig
    from storage.database import open_database

    device_name = resolve_device(device or settings.device)
    detector_weights = _resolve_detector(detector or settings.detector, settings.weights_dirs)
    reid_path = resolve_reid(reid or settings.reid, settings.weights_dirs, explicit=reid is not None)
    pose_factory = _build_pose_factory(pose, device_name, settings.weights_dirs)
    db = open_database(Path(db_path) if db_path else settings.db)
    console = stderr_console()
    stdout = stdout_console()
    stdout.print(f"database: {db.location}", markup=False, highlight=False, soft_wrap=True)

    jobs = [IngestJob(Path(v), cameras[i] if cameras else "", start_times[i]) for i, v in enumerate(videos)]
    names = [j.camera for j in jobs]
    if len(set(names)) != len(names):
        raise UsageError(f"two videos would get the same camera name ({', '.join(names)}); name them with --camera")
    window = max(1.0, 1.0 / crops_per_second)
    options = IngestOptions(analysis_fps=rate, batch_size=batch_size, force=force, max_duration_s=duration,
                            sampling=SamplingConfig(crops_per_window=max(1, round(crops_per_second * window)),
                                                    window_s=window))
    summaries = _run_ingest(db, jobs, options, console, detector_weights, reid_path, pose_factory, tracker,
                            device_name, batch_size)
    stdout.print(_summary_table(summaries))
    if any(s.status == "done" for s in summaries):
        cluster_after_ingest(db, stdout)
    db.close()
    if any(s.status == "interrupted" for s in summaries):
        sys.exit(EXIT_INTERRUPTED)
    if any(s.status == "failed" for s in summaries):
        sys.exit(EXIT_FAILED_VIDEOS)


def _run_ingest(db, jobs, options, console, detector_weights, reid_path, pose_factory, tracker_name, device,
                batch_size):
    from models.detection import PersonTracker, load_yolo
    from models.encoders import load_encoder
    from pipelines.ingest import ingest as run_ingest

    encoder = load_encoder(reid_path, device, batch_size)
    weights = detector_weights.path or detector_weights.fetch_name
    try:  # loaded here so bad weights fail once, before any camera starts
        first_model = load_yolo(weights)
    except WeightsError:
        if detector_weights.path is not None:
            raise
        raise WeightsError(detector_weights.missing_message(
            "detector", "--detector", extra=" and Ultralytics could not download it (offline?)")) from None
    def tracker_for(model=None):
        return PersonTracker(weights, device=device, tracker=tracker_name, model=model)

    make_tracker = _first_then_new(tracker_for(first_model), tracker_for)

    stop = threading.Event()
    with _RichProgress(console) as progress:
        try:
            return run_ingest(db, jobs, encoder, make_tracker, pose_factory, options, progress, stop)
        except KeyboardInterrupt:
            console.print("reid-app: interrupted; the database is consistent - run the same command again to "
                          "complete the unfinished videos", markup=False, highlight=False, soft_wrap=True)
            sys.exit(EXIT_INTERRUPTED)


for _command in (*MATCHING_COMMANDS, *TRAINING_COMMANDS):
    cli.add_command(_command)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Console-script entry point: runs the CLI and turns user errors into one line on stderr."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="reid-app", standalone_mode=False)
    except ReidAppError as exc:
        click.echo(f"reid-app: error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    except click.exceptions.Abort:
        click.echo("reid-app: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        click.echo(f"reid-app: error: {exc.format_message()} (see 'reid-app {' '.join(sys.argv[1:2])} --help')",
                   err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("reid-app: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except SystemExit:
        raise


if __name__ == "__main__":
    main()
