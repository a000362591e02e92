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

from common.errors import ReidAppError, UsageError, word_settings
from common.neutralise import one_line
from common.redaction import RedactingFilter, display_text
from common.settings import DatabaseLocation
from common.types import CameraSummary, IngestStatus
from reid_app import __version__
from reid_app.adapt_cli import ADAPT_COMMANDS
from reid_app.cli_helpers import cluster_after_ingest, command_settings, finite_option, parse_start_time
from reid_app.console import stderr_console, stdout_console
from reid_app.ingest_runner import IngestChoices, prepare_ingest, with_site_model
from reid_app.live_cli import COMMANDS as LIVE_COMMANDS
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
    handler.addFilter(RedactingFilter())  # no URL credentials in any log line, whoever wrote it
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    logging.getLogger("ultralytics").setLevel(logging.WARNING if not verbose else logging.INFO)


class _RichProgress:
    """Progress bars per camera on stderr, implementing ``pipelines.ingest.files.IngestProgress``."""

    def __init__(self, console):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console
        self.progress = Progress(
            TextColumn("{task.description:<14}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("frames"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
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
            self.progress.console.print(
                f"reid-app: error: {word_settings(summary.message)}", markup=False, highlight=False, soft_wrap=True
            )
        elif summary.status == "skipped":
            self.progress.console.print(
                f"reid-app: {word_settings(summary.message)}", markup=False, highlight=False, soft_wrap=True
            )

    def on_message(self, text):
        self.progress.console.print(f"reid-app: {text}", markup=False, highlight=False, soft_wrap=True)


def _summary_table(summaries):
    from rich.table import Table

    table = Table(title="Ingest summary")
    for name, justify in (
        ("camera", "left"),
        ("status", "left"),
        ("frames", "right"),
        ("tracks", "right"),
        ("sightings", "right"),
        ("embeddings", "right"),
        ("seconds", "right"),
        ("frames/s", "right"),
        ("note", "left"),
    ):
        table.add_column(name, justify=justify, overflow="fold")
    for s in summaries:
        table.add_row(
            s.camera,
            s.status,
            str(s.frames_analysed),
            str(s.tracks),
            str(s.sightings),
            str(s.embeddings),
            f"{s.seconds:.1f}",
            f"{s.frames_per_second:.1f}",
            word_settings(s.message),
        )
    return table


def _record_streams(streams, duration: float, folder: Path, timeout: float, stop: threading.Event, console):
    """Record every ``(camera, url)`` for ``duration`` seconds at once; returns the ingest jobs in rounds (the
    first segment of every camera, then the second...) and a ``failed`` summary per camera recorded nothing."""
    from pipelines.ingest.files import IngestJob
    from pipelines.live.capture import record_cameras
    from pipelines.live.stream import StreamOptions

    console.print(
        f"recording {len(streams)} live camera(s) for {duration:g} s into {folder}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    options = StreamOptions(give_up_after_s=timeout, open_timeout_s=min(10.0, timeout))
    results = record_cameras(streams, duration, folder, options, should_stop=stop.is_set)
    rounds: list[list] = []
    failed = []
    for result in results:
        if result.error:
            failed.append(
                CameraSummary(camera=result.camera, video=result.name, status=IngestStatus.FAILED, message=result.error)
            )
            continue
        note = f" after {result.reconnects} reconnection(s)" if result.reconnects else ""
        console.print(
            f"{result.camera}: recorded {len(result.segments)} segment(s){note} from {result.name}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        for n, segment in enumerate(result.segments):
            while len(rounds) <= n:
                rounds.append([])
            rounds[n].append(IngestJob(segment.path, result.camera, segment.start_time, recorded=True))
    return rounds, failed


def _unreadable_videos(jobs) -> dict:
    """Job index -> a ``failed`` :class:`CameraSummary` for each video that cannot be opened and decoded."""
    from pipelines.ingest.video import probe_video

    failed = {}
    for i, job in enumerate(jobs):
        try:
            probe_video(job.path)
        except ReidAppError as exc:
            failed[i] = CameraSummary(
                camera=job.camera, video=str(job.path), status=IngestStatus.FAILED, message=str(exc)
            )
    return failed


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reid-app")
@click.option("-v", "--verbose", is_flag=True, help="Print informational messages too.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """reid-app: find the same person across many cameras.

    With no command, opens the desktop app ('reid-app gui'). Ingest footage with
    'reid-app ingest cam1.mp4 cam2.mp4', then search it with 'reid-app search' or in the desktop app.
    Train and measure the re-id network with 'reid-app train', 'reid-app evaluate' and 'reid-app export'.
    """
    _setup_logging(verbose)
    if ctx.invoked_subcommand is None:
        _open_gui(None, None)


@cli.command()
@click.argument("videos", nargs=-1, required=True, metavar="VIDEO [VIDEO ...]")
@click.option(
    "--db",
    "db_path",
    metavar="PATH",
    help="Database file (default: reid.db in your user data folder, or $REID_APP_DB). Created when missing.",
)
@click.option(
    "--camera",
    "cameras",
    multiple=True,
    metavar="NAME",
    help="Camera name, once per video in the same order (default: each file's name without extension).",
)
@click.option(
    "--device",
    default=None,
    metavar="auto|cpu|cuda[:N]",
    help="Where the re-id network runs [default: auto = the first GPU when present, else cpu].",
)
@click.option(
    "--fps",
    "fps",
    type=str,
    default="5",
    show_default=True,
    metavar="RATE",
    help="Frames analysed per second of video (never more than the video's own rate).",
)
@click.option(
    "--detector",
    default=None,
    metavar="WEIGHTS",
    help="YOLO person detector: a .pt file, an export "
    "folder (OpenVINO...) or an Ultralytics name [default: yolov8n, which finds small and distant people; "
    "a pose model also works and gives keypoints for free, but misses most people under ~60 px].",
)
@click.option(
    "--detector-size",
    type=int,
    default=640,
    show_default=True,
    metavar="PIXELS",
    help="Longest side of the detector's input, a multiple of 32 from 160 to 1920 (frames keep their "
    "aspect). Larger finds smaller and partly hidden people at a higher cost (lab cameras: 960 finds 77% "
    "of a careful reference's people against 73%, at twice the detector time); smaller is faster (PETS, "
    "480: 92% against 94%, 30% less detector time). OpenVINO exports of other sizes are reshaped.",
)
@click.option(
    "--tiles",
    type=click.IntRange(1, 4),
    default=1,
    show_default=True,
    metavar="N",
    help="Also detect in N x N overlapping tiles of every frame (SAHI slicing), each scaled up to the "
    "detector's input, for footage where people are under ~60 px (elevated or wide views). Costs about "
    "1 + N*N detector passes per frame; 1: whole frames only.",
)
@click.option(
    "--pose",
    default="auto",
    show_default=True,
    metavar="auto|none|WEIGHTS|mmpose:CFG:CKPT",
    help="Pose backend: auto uses the detector's keypoints when it is a pose model, else runs yolov8n-pose "
    "top-down on the detected people (batched); WEIGHTS runs that YOLO pose model top-down; none: "
    "fixed body-ratio parts; mmpose needs mmpose installed.",
)
@click.option(
    "--reid",
    default=None,
    metavar="WEIGHTS",
    help="Re-id model: a reid-app checkpoint (.pt), an "
    "OpenVINO IR (.xml or its folder) or an ONNX re-id model [N,3,H,W]->[N,D] [default: the shipped "
    "joint-loss model].",
)
@click.option(
    "--batch-size", type=click.IntRange(1, 4096), default=32, show_default=True, help="Crops per re-id forward pass."
)
@click.option(
    "--start",
    "starts",
    multiple=True,
    metavar="TIME",
    help="Wall-clock start of each video (ISO 8601 "
    "or epoch seconds), once per video [default: the container's creation time, else 0].",
)
@click.option(
    "--duration", type=float, default=None, metavar="SECONDS", help="Analyse only the first SECONDS of each video."
)
@click.option(
    "--tracker",
    type=click.Choice(["botsort-reid", "bytetrack", "botsort"]),
    default="botsort-reid",
    show_default=True,
    help="Within-camera tracker. botsort-reid also matches people by the re-id embedding of every "
    "confident box, so identities survive crossings and occlusions (PETS 2009 at 5 frames/s: IDF1 75 "
    "against 65, ID switches 26 against 50) at about 1.5x the ingest time on a CPU; bytetrack matches by "
    "box motion alone (the fastest); botsort adds camera-motion compensation (moving cameras).",
)
@click.option(
    "--crops-per-second",
    type=float,
    default=1.0,
    show_default=True,
    help="Most crops encoded per track per second (best quality first); bounds re-id cost.",
)
@click.option(
    "--static-after",
    type=float,
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="Mark tracks whose box does not move for this long as static (an empty chair): kept out of "
    "identities and search ('search --include-static' shows them); 0: never.",
)
@click.option(
    "--motion-gate/--no-motion-gate",
    default=True,
    show_default=True,
    help="Skip detection on frames where nothing moved (people standing still are tracked on from the "
    "last detection; the summary says how many frames); --no-motion-gate detects every analysed frame.",
)
@click.option(
    "--pose-interval",
    type=float,
    default=0.4,
    show_default=True,
    metavar="SECONDS",
    help="Estimate a tracked person's pose at most once per SECONDS of video (top-down pose); in between "
    "their keypoints follow their box. 0: every analysed frame.",
)
@click.option(
    "--recordings",
    "recordings_dir",
    default=None,
    metavar="DIR",
    help="Where live streams (rtsp://, http(s)://, udp://, /dev/videoN given as VIDEO) are recorded "
    "before they are ingested [default: 'recordings' beside the database].",
)
@click.option(
    "--stream-timeout",
    type=click.FloatRange(1, 3600),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="A live stream that delivers nothing for this long is given up (reported as failed; the other cameras go on).",
)
@click.option("--force", is_flag=True, help="Re-ingest videos already in the database, replacing their rows.")
@click.option(
    "--cluster",
    "cluster",
    default=None,
    metavar="HOST:PORT",
    help="Run on the Ray cluster whose head is at HOST:PORT ('ray start --head' there; 'ray start "
    "--address HOST:PORT' on each worker machine): one task per video, on a GPU when the cluster has "
    "one, writing into --db, which must be a PostgreSQL URL every machine reaches. Video paths must be "
    "the same on every machine (shared storage).",
)
def ingest(
    videos: Sequence[str],
    db_path: Optional[str],
    cameras: Sequence[str],
    device: Optional[str],
    fps: str,
    detector: Optional[str],
    detector_size: int,
    tiles: int,
    pose: str,
    reid: Optional[str],
    batch_size: int,
    starts: Sequence[str],
    duration: Optional[float],
    tracker: str,
    crops_per_second: float,
    static_after: float,
    motion_gate: bool,
    pose_interval: float,
    recordings_dir: Optional[str],
    stream_timeout: float,
    force: bool,
    cluster: Optional[str],
) -> None:
    """Detect, track, pose-estimate and encode every person in VIDEOs and store them in the database.

    Each video is one camera. Videos already in the database are skipped (see --force); an interrupted run is
    completed by running the same command again. A VIDEO may be a live stream (rtsp://, http(s)://, udp://,
    /dev/videoN): with --duration S it is recorded for S seconds (into --recordings) and the recording ingested,
    with wall-clock times.
    """
    settings = command_settings()
    try:
        rate = float(fps)
    except ValueError:
        raise UsageError(f"--fps {fps!r} is not a number") from None
    finite_option(rate, "--fps")
    finite_option(crops_per_second, "--crops-per-second")
    finite_option(pose_interval, "--pose-interval")
    if duration is not None and duration != float("inf"):
        finite_option(duration, "--duration")
    if cameras and len(cameras) != len(videos):
        raise UsageError(f"--camera was given {len(cameras)} times for {len(videos)} videos; give one per video")
    if starts and len(starts) != len(videos):
        raise UsageError(f"--start was given {len(starts)} times for {len(videos)} videos; give one per video")
    start_times = [parse_start_time(s) for s in starts] or [None] * len(videos)
    choices = IngestChoices(
        detector=detector,
        detector_size=detector_size,
        pose=pose,
        reid=reid,
        device=device,
        tracker=tracker,
        analysis_fps=rate,
        batch_size=batch_size,
        crops_per_second=crops_per_second,
        duration_s=duration,
        force=force,
        static_after_s=static_after,
        motion_gate=motion_gate,
        pose_interval_s=pose_interval,
        tiles=tiles,
    )
    choices.check()

    from common.settings import recordings_dir_for
    from pipelines.ingest.files import IngestJob
    from pipelines.live.capture import stream_camera_name
    from pipelines.live.stream import is_stream, redact_url
    from storage.database import open_database

    streams = [(cameras[i] if cameras else stream_camera_name(v), v) for i, v in enumerate(videos) if is_stream(v)]
    if streams and duration is None:
        raise UsageError(
            f"{redact_url(streams[0][1])} is a live stream: give --duration SECONDS to record and "
            f"ingest that much of it"
        )
    if streams and starts:
        raise UsageError("--start cannot be given with live streams: their frames carry the wall-clock time")
    jobs = [
        IngestJob(Path(v), cameras[i] if cameras else "", start_times[i])
        for i, v in enumerate(videos)
        if not is_stream(v)
    ]
    names = [j.camera for j in jobs] + [name for name, _ in streams]
    if len(set(names)) != len(names):
        raise UsageError(f"two videos would get the same camera name ({', '.join(names)}); name them with --camera")
    unreadable = _unreadable_videos(jobs)
    if not streams and len(unreadable) == len(jobs):  # nothing to do: say so before seconds of model loading
        for summary in unreadable.values():
            click.echo(f"reid-app: error: {word_settings(summary.message)}", err=True)
        stdout_console().print(_summary_table(list(unreadable.values())))
        sys.exit(EXIT_FAILED_VIDEOS)
    location = db_path or settings.db
    if cluster is not None:
        _ingest_on_cluster(cluster, str(location), jobs, streams, choices, unreadable)
        return
    from models.encoders import resolve_device

    resolve_device(choices.device or settings.device)  # cheap checks first: device, an existing database, models
    # an existing database (a damaged or foreign file) is opened before seconds of model loading; a new one only
    # after the models loaded, so that a failure there creates no file
    file = DatabaseLocation.of(location).file
    db = open_database(location) if file is not None and file.exists() else None
    try:
        prepared = prepare_ingest(with_site_model(choices, db), settings)
    except BaseException:
        if db is not None:
            db.close()
        raise
    db = db or open_database(location)
    console = stderr_console()
    stdout = stdout_console()
    stdout.print(f"database: {db.location}", markup=False, highlight=False, soft_wrap=True)
    stop = threading.Event()
    recorded: list = []  # rounds of ingest jobs: each camera's first recording, then its second...
    failed_streams: list = []
    if streams:
        folder = Path(recordings_dir) if recordings_dir else recordings_dir_for(location)
        try:
            recorded, failed_streams = _record_streams(streams, duration, folder, stream_timeout, stop, console)
        except KeyboardInterrupt:  # the recorders closed their segments: each file plays
            console.print(
                f"reid-app: interrupted while recording; nothing was ingested, the recordings so far are in {folder}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
            db.close()
            sys.exit(EXIT_INTERRUPTED)
    with _RichProgress(console) as progress:
        try:
            summaries = failed_streams + prepared.run(db, jobs, progress, stop)
            for batch in recorded:  # one run per round of segments: a camera's segments are ingested in turn
                summaries += prepared.run(db, batch, progress, stop)
        except KeyboardInterrupt:
            console.print(
                "reid-app: interrupted; the database is consistent - run the same command again to "
                "complete the unfinished videos",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
            sys.exit(EXIT_INTERRUPTED)
    _finish_ingest(db, summaries, stdout)


def _finish_ingest(db, summaries, stdout) -> None:
    """The summary table, identities for the new tracks, and the exit code of an ingest (local or on a cluster)."""
    stdout.print(_summary_table(summaries))
    if any(s.status == "done" for s in summaries):
        cluster_after_ingest(db, stdout)
    db.close()
    if any(s.status == "interrupted" for s in summaries):
        sys.exit(EXIT_INTERRUPTED)
    if any(s.status == "failed" for s in summaries):
        sys.exit(EXIT_FAILED_VIDEOS)


def _ingest_on_cluster(address: str, location: str, jobs, streams, choices, unreadable) -> None:
    """``ingest --cluster``: the videos as Ray tasks (``reid_app.cluster_ingest``), then the usual summary and
    identities."""
    from reid_app.cluster_ingest import ingest_on_cluster
    from storage.database import open_database

    if not DatabaseLocation.of(location).is_url:
        raise UsageError(
            f"--cluster needs a database every machine reaches: give --db postgresql://..., not the file {location}"
        )
    if streams:
        raise UsageError("--cluster ingests video files; watch live cameras with 'reid-app watch'")
    readable = [j for i, j in enumerate(jobs) if i not in unreadable]
    db = open_database(location)  # made (or upgraded) once here, before the workers open it
    stdout = stdout_console()
    stdout.print(f"database: {db.location}", markup=False, highlight=False, soft_wrap=True)
    stdout.print(f"cluster: {address}; {len(readable)} videos", markup=False, highlight=False)

    def done(summary):
        stdout.print(
            f"  {summary.camera}: {summary.status}"
            + (f" ({word_settings(summary.message)})" if summary.message else ""),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )

    choices = with_site_model(choices, db)  # the workers encode with the site's current adapted version, if any
    summaries = list(unreadable.values()) + ingest_on_cluster(address, location, readable, choices, done)
    _finish_ingest(db, summaries, stdout)


@cli.command()
@click.option(
    "--db",
    "db_path",
    metavar="PATH",
    help="Database to open (default: reid.db in your user data "
    "folder, or $REID_APP_DB; created when missing). File > Open/New switches databases later.",
)
@click.option(
    "--device",
    default=None,
    metavar="auto|cpu|cuda[:N]",
    help="Where searches and new ingests run [default: auto = the first GPU when present, else cpu].",
)
def gui(db_path: Optional[str], device: Optional[str]) -> None:
    """Open the desktop app: watch the cameras, click a person, see everywhere they appear.

    'reid-app' with no command does the same on the default database.
    """
    _open_gui(db_path, device)


def _open_gui(db_path: Optional[str], device: Optional[str]) -> None:
    from ui.qt_env import check_display

    check_display()  # before the app's imports (torch among them: 3-4 s), so a missing display is said at once
    from dataclasses import replace

    from models.encoders import resolve_device
    from reid_app.ingest_runner import load_query_encoder
    from reid_app.live_session import LiveSession
    from ui.app import AppServices, run_app

    settings = command_settings()
    services = AppServices(
        prepare_ingest=lambda choices: prepare_ingest(choices, settings),
        device=resolve_device(device or settings.device),
        default_choices=IngestChoices(detector=settings.detector, reid=None),
        load_query_encoder=lambda db: load_query_encoder(db, settings, device),
        start_watch=lambda site, location, choices, on_alert: LiveSession(
            site, location, replace(choices, device=device), settings, on_alert
        ),
    )
    sys.exit(run_app(db_path or settings.db, services))


for _command in (*MATCHING_COMMANDS, *LIVE_COMMANDS, *TRAINING_COMMANDS, *ADAPT_COMMANDS):
    cli.add_command(_command)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Console-script entry point: runs the CLI and turns user errors, storage failures (disk full, I/O errors, a
    damaged database) and interrupts into one line on stderr."""
    from sqlalchemy.exc import SQLAlchemyError

    from storage.database import storage_error_text

    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="reid-app", standalone_mode=False)
    except ReidAppError as exc:
        click.echo(f"reid-app: error: {one_line(display_text(exc))}", err=True)
        sys.exit(EXIT_ERROR)
    except click.exceptions.Abort:
        click.echo("reid-app: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        click.echo(
            f"reid-app: error: {one_line(display_text(exc.format_message()))} "
            f"(see 'reid-app {' '.join(sys.argv[1:2])} --help')",
            err=True,
        )
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("reid-app: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except SQLAlchemyError as exc:
        click.echo(f"reid-app: error: database: {storage_error_text(exc)}", err=True)
        sys.exit(EXIT_ERROR)
    except (OSError, MemoryError) as exc:
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        click.echo(f"reid-app: error: {display_text(where)}{storage_error_text(exc)}", err=True)
        sys.exit(EXIT_ERROR)
    except SystemExit:
        raise
    except Exception:  # a bug: its traceback is for a report, with every URL in it redacted
        import traceback

        click.echo(display_text(traceback.format_exc()), err=True)
        click.echo("reid-app: internal error (the traceback above); please report it", err=True)
        sys.exit(EXIT_ERROR)


if __name__ == "__main__":
    main()
