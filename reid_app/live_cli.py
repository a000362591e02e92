"""CLI commands of live sites: ``watch`` (analyse, record and alert until stopped), ``watchlist`` (persons of
interest) and ``alerts``."""

from __future__ import annotations

import signal
import threading
from datetime import datetime, timezone
from pathlib import Path

import click

from common.errors import UsageError
from common.settings import DatabaseLocation
from reid_app.cli_helpers import DB_ID, command_settings, format_time, open_command_db
from reid_app.console import stderr_console, stdout_console
from reid_app.ingest_runner import IngestChoices, prepare_ingest, with_site_model
from reid_app.live_session import make_live_site

_DB_HELP = "Database file [default: reid.db in your user data folder, or $REID_APP_DB]."


def _print(text: str, err: bool = False) -> None:
    (stderr_console() if err else stdout_console()).print(text, markup=False, highlight=False, soft_wrap=True)


def status_line(status) -> str:
    """One camera's status (``pipelines.live.watch.CameraStatus``) as one line of text."""
    line = (
        f"{status.camera:<12} {status.state:<12} {status.analysed_fps:4.1f} frames/s  lag {status.lag_s:5.2f} s  "
        f"people {status.people:<3} tracks {status.tracks:<5} sightings {status.sightings:<6} "
        f"segments {status.segments:<4} alerts {status.alerts}"
    )
    if status.last_error and (status.state in ("connecting", "reconnecting", "stopped") or status.storing_paused):
        line += f"  ({status.last_error})"
    return line


def alert_line(payload: dict) -> str:
    """An alert (``pipelines.live.watchlist.alert_payload``) as one console line."""
    return (
        f"ALERT {payload['time']}  {payload['name']!r} on {payload['camera']} (track {payload['track_id']}, "
        f"similarity {payload['similarity']:.2f}, alert {payload['alert_id']})"
    )


def _print_statuses(statuses) -> None:
    stamp = datetime.now(timezone.utc).strftime("%H:%M:%S")
    for status in statuses:
        _print(f"[{stamp}] {status_line(status)}")


@click.command()
@click.option(
    "--site",
    "site_path",
    required=True,
    metavar="FILE",
    help="The site file (TOML): cameras, URLs, "
    "overlap groups, recording, retention and alert settings; see README 'Live cameras'.",
)
@click.option(
    "--db",
    "db_path",
    metavar="PATH",
    help="Database [default: the site file's db, else reid.db in your "
    "user data folder, or $REID_APP_DB]. Created when missing.",
)
@click.option(
    "--recordings",
    "recordings_dir",
    default=None,
    metavar="DIR",
    help="Where the cameras are recorded [default: the site file's recordings, else 'recordings' beside the database].",
)
@click.option("--device", default=None, metavar="auto|cpu|cuda[:N]", help="Where the networks run [default: auto].")
@click.option("--detector", default=None, metavar="WEIGHTS", help="YOLO person detector [default: as ingest].")
@click.option(
    "--detector-size",
    type=int,
    default=640,
    show_default=True,
    metavar="PIXELS",
    help="Longest side of the detector's input (multiple of 32, 160-1920).",
)
@click.option("--pose", default="auto", show_default=True, metavar="auto|none|WEIGHTS", help="Pose backend, as ingest.")
@click.option("--reid", default=None, metavar="WEIGHTS", help="Re-id model [default: the shipped joint-loss model].")
@click.option(
    "--status-every",
    type=click.FloatRange(0.5, 3600),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="Print every camera's status line this often.",
)
@click.option(
    "--stop-after",
    type=click.FloatRange(1, None),
    default=None,
    metavar="SECONDS",
    help="Stop by itself after SECONDS (as on Ctrl-C) [default: run until stopped].",
)
@click.option(
    "--min-embeddings",
    type=click.IntRange(1, 100),
    default=2,
    show_default=True,
    help="A live track is compared with the watchlist once its descriptor averages this many crops "
    "(fewer: faster alerts, more false ones).",
)
@click.option(
    "--cluster",
    default=None,
    metavar="HOST:PORT",
    help="Spread the cameras over the Ray cluster whose head is at HOST:PORT: one worker per machine (per "
    "GPU when there are GPUs), each watching its share of the cameras into the shared --db (a PostgreSQL "
    "URL) and recording into the same --recordings folder (shared storage). A worker that dies is "
    "restarted and resumes its cameras.",
)
def watch(
    site_path,
    db_path,
    recordings_dir,
    device,
    detector,
    detector_size,
    pose,
    reid,
    status_every,
    stop_after,
    min_embeddings,
    cluster,
) -> None:
    """Watch live cameras until stopped: detect, track, encode and store people as they appear, record every
    camera as rolling MP4 segments, give new tracks identities, raise watchlist alerts, apply retention.

    Stop with Ctrl-C or SIGTERM: buffered sightings are stored and every recording is closed (playable) before it
    exits. A camera that is down or drops is retried (backoff up to 30 s) while the others go on.
    """
    from common.settings import recordings_dir_for
    from pipelines.live.site import load_site
    from pipelines.live.stream import redact_url
    from storage.database import open_database

    site = load_site(site_path)
    settings = command_settings()
    choices = IngestChoices(detector=detector, detector_size=detector_size, pose=pose, reid=reid, device=device)
    choices.check()
    location = db_path or site.db or settings.db
    recordings = Path(recordings_dir) if recordings_dir else site.recordings or recordings_dir_for(location)
    stop = threading.Event()
    timer = None

    def start_timer():
        if timer is not None:
            timer.start()

    if cluster is not None:
        from reid_app.cluster_watch import watch_on_cluster

        if not DatabaseLocation.of(location).is_url:
            raise UsageError(
                f"--cluster needs a database every machine reaches: give --db postgresql://..., not the file {location}"
            )
        db = open_database(location)  # made (or upgraded) once here, before the workers open it
        choices = with_site_model(choices, db)  # the site's current adapted version, if any
        db.close()
        _print(
            f"database: {redact_url(str(location))}\nrecordings: {recordings} (must be the same folder on every "
            f"machine)\ncluster: {cluster}; watching {len(site.cameras)} camera(s)"
        )

        def run():  # --stop-after counts from when every worker has loaded its models, as it does locally
            return watch_on_cluster(
                cluster,
                str(location),
                site,
                recordings,
                choices,
                min_embeddings,
                stop,
                _print_statuses,
                status_every,
                on_ready=start_timer,
            )

        db = None
    else:
        db = open_database(location)
        prepared = prepare_ingest(with_site_model(choices, db), settings)
        _print(
            f"database: {db.location}\nrecordings: {recordings}\nwatching {len(site.cameras)} camera(s): "
            + ", ".join(f"{c.name} ({c.shown_url})" for c in site.cameras)
        )
        live = make_live_site(
            db, site, recordings, prepared, lambda payload: _print(alert_line(payload)), min_embeddings, status_every
        )
        if live.watchlist.entries:
            _print(
                f"watchlist: {len(live.watchlist.entries)} person(s), alert at similarity >= "
                f"{live.watchlist.threshold:.2f}" + (f", webhook {redact_url(site.webhook)}" if site.webhook else "")
            )

        def run():
            return [live.run(stop, _print_statuses)]

    def on_signal(signum, _frame):
        if stop.is_set():
            raise KeyboardInterrupt
        _print(
            f"reid-app: {signal.Signals(signum).name}: stopping - storing the last sightings and closing the "
            f"recordings",
            err=True,
        )
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    timer = threading.Timer(stop_after, stop.set) if stop_after else None
    if timer is not None:
        timer.daemon = True
        if cluster is None:
            start_timer()
    try:
        summaries = run()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if timer is not None:
            timer.cancel()
    if db is not None:
        db.close()
    cameras = [c for summary in summaries for c in summary.cameras]
    _print(
        f"watched {max(s.seconds for s in summaries):.0f} s: "
        + "; ".join(f"{c.camera}: {c.tracks} tracks, {c.sightings} sightings, {c.segments} segments" for c in cameras)
        + f"; {sum(s.alerts for s in summaries)} alert(s)"
    )


@click.group()
def watchlist() -> None:
    """Persons of interest: live tracks that match one raise an alert during 'reid-app watch'."""


@watchlist.command("add")
@click.argument("name")
@click.option("--db", "db_path", metavar="PATH", help=_DB_HELP)
@click.option("--identity", "identity_id", type=DB_ID, default=None, help="Watch for this identity (all its tracks).")
@click.option("--track", "track_id", type=DB_ID, default=None, help="Watch for the person of this track.")
@click.option(
    "--image",
    "image_path",
    default=None,
    metavar="FILE",
    help="Watch for the person in this image (a crop of one person).",
)
@click.option("--note", default="", help="A note shown with the alerts.")
@click.option("--reid", default=None, metavar="WEIGHTS", help="For --image: the re-id model [default: the database's].")
@click.option("--device", default=None, metavar="auto|cpu|cuda[:N]", help="For --image: where to encode.")
def watchlist_add(name, db_path, identity_id, track_id, image_path, note, reid, device) -> None:
    """Put a person on the watchlist as NAME: one of --identity, --track or --image."""
    from pipelines.live.watchlist import watch_identity, watch_image, watch_track
    from storage.audit import record

    given = [x is not None for x in (identity_id, track_id, image_path)]
    if sum(given) != 1:
        raise UsageError("give exactly one of --identity, --track or --image")
    if not name.strip():
        raise UsageError("NAME must not be empty")
    db = open_command_db(db_path)
    try:
        if identity_id is not None:
            entry = watch_identity(db, identity_id, name.strip(), note)
            source = f"identity {identity_id}"
        elif track_id is not None:
            entry = watch_track(db, track_id, name.strip(), note)
            source = f"track {track_id}"
        else:
            from reid_app.ingest_runner import load_query_encoder

            encoder = load_query_encoder(db, command_settings(), device, reid)
            entry = watch_image(db, Path(image_path), name.strip(), encoder, note)
            source = f"image {image_path}"
        record(db, "watchlist", change="add", watchlist_id=entry, name=name.strip(), source=source)
    finally:
        db.close()
    _print(f"watchlist entry {entry}: {name.strip()} (from {source})")


@watchlist.command("list")
@click.option("--db", "db_path", metavar="PATH", help=_DB_HELP)
def watchlist_list(db_path) -> None:
    """List the watchlist."""
    from storage.watchlist import list_entries

    db = open_command_db(db_path)
    entries = list_entries(db)
    db.close()
    if not entries:
        _print("the watchlist is empty; add a person with 'reid-app watchlist add NAME --identity N'")
    for e in entries:
        _print(
            f"{e.id:>4}  {e.name}  (from {e.kind} {e.source}, model {e.model_id})" + (f"  {e.note}" if e.note else "")
        )


@watchlist.command("remove")
@click.argument("entry_id", type=DB_ID)
@click.option("--db", "db_path", metavar="PATH", help=_DB_HELP)
def watchlist_remove(entry_id, db_path) -> None:
    """Take entry ENTRY_ID (see 'watchlist list') off the watchlist, with its alerts."""
    from storage.audit import record
    from storage.watchlist import remove_entry

    db = open_command_db(db_path)
    try:
        if not remove_entry(db, entry_id):
            raise UsageError(f"the watchlist has no entry {entry_id}; see 'reid-app watchlist list'")
        record(db, "watchlist", change="remove", watchlist_id=entry_id)
    finally:
        db.close()
    _print(f"watchlist entry {entry_id} removed")


@click.command()
@click.option("--db", "db_path", metavar="PATH", help=_DB_HELP)
@click.option("--limit", type=click.IntRange(1, 100000), default=50, show_default=True, help="Newest alerts shown.")
def alerts(db_path, limit) -> None:
    """List the watchlist alerts raised by 'reid-app watch', newest first."""
    from storage.watchlist import list_alerts

    db = open_command_db(db_path)
    rows = list_alerts(db, limit)
    db.close()
    if not rows:
        _print("no alerts")
    for a in rows:
        where = f"track {a.track_id}" if a.track_id is not None else "footage purged"
        _print(
            f"{a.id:>5}  {format_time(a.timestamp)}  {a.name!r} on {a.camera} ({where}, similarity "
            f"{a.similarity:.2f})  delivered: {a.delivered or '-'}"
        )


COMMANDS = [watch, watchlist, alerts]
