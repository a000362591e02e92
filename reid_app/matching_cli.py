"""CLI commands of cross-camera matching: search, identities, feedback, cameras, export-identity, audit."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import click

from common.errors import UsageError
from common.timefmt import confidence_text, zone_label
from reid_app.cli_helpers import DB_ID, command_settings, finite_option, format_time, open_command_db, parse_start_time
from reid_app.console import stderr_console, stdout_console

_DB_HELP = "Database file [default: reid.db in your user data folder, or $REID_APP_DB]."


def _print(text: str) -> None:
    stdout_console().print(text, markup=False, highlight=False, soft_wrap=True)


@click.command()
@click.option("--db", "db_path", metavar="PATH", help=_DB_HELP)
@click.option("--track", "track_id", type=DB_ID, default=None, help="Query by a track's id.")
@click.option("--sighting", "sighting_id", type=DB_ID, default=None, help="Query by a sighting's id.")
@click.option("--image", "image_path", default=None, metavar="FILE", help="Query by a person image (a crop).")
@click.option("--top-k", type=click.IntRange(1, 100000), default=10, show_default=True, help="Number of results.")
@click.option("--camera", "cameras", multiple=True, metavar="NAME", help="Search only this camera (repeatable).")
@click.option(
    "--exclude-camera", "exclude_cameras", multiple=True, metavar="NAME", help="Never return this camera (repeatable)."
)
@click.option("--other-cameras", is_flag=True, help="Never return the query's own camera.")
@click.option(
    "--after", default=None, metavar="TIME", help="Only sightings at or after TIME (ISO 8601 or epoch seconds)."
)
@click.option("--before", default=None, metavar="TIME", help="Only sightings at or before TIME.")
@click.option(
    "--track-similarity",
    type=click.Choice(["mean", "max"]),
    default="mean",
    show_default=True,
    help="mean: compare tracks by their mean descriptors; max: by their most similar pair of sightings.",
)
@click.option(
    "--include-static",
    is_flag=True,
    help="Also return static tracks (boxes that never moved: an empty chair, a coat), which are left out by default.",
)
@click.option("--rerank", is_flag=True, help="Re-rank the best 100 tracks with k-reciprocal encoding.")
@click.option("--sightings", "per_sighting", is_flag=True, help="One result per sighting instead of per track.")
@click.option(
    "--expand",
    type=click.IntRange(1, 1000),
    default=1,
    show_default=True,
    metavar="N",
    help="List the N best sightings of each track.",
)
@click.option(
    "--index",
    "index_kind",
    type=click.Choice(["auto", "exact", "ann", "faiss"]),
    default="auto",
    show_default=True,
    help="auto: exact cosine where a full scan is fast (under 1 GB of vectors on a CPU, "
    "any size on a GPU), approximate FAISS IVF-PQ beyond, its candidates re-scored exactly; exact: always "
    "a full scan; ann (or faiss): approximate above 20,000 rows. Used by every search mode.",
)
@click.option(
    "--reid",
    default=None,
    metavar="WEIGHTS",
    help="For --image: the re-id model used at ingest "
    "[default: the database's model, when its file exists; else the shipped model].",
)
@click.option(
    "--device", default=None, metavar="auto|cpu|cuda[:N]", help="Where to score (and encode --image) [default: auto]."
)
def search(
    db_path,
    track_id,
    sighting_id,
    image_path,
    top_k,
    cameras,
    exclude_cameras,
    other_cameras,
    after,
    before,
    track_similarity,
    include_static,
    rerank,
    per_sighting,
    expand,
    index_kind,
    reid,
    device,
) -> None:
    """Find where else a person appears: rank stored tracks by similarity to a track, a sighting or an image.

    Scores are cosine similarities of re-id embeddings (higher is more alike). The query's own track is never
    listed; tracks a user rejected for it neither; confirmed ones come first. Each search is recorded in the
    audit log ('reid-app audit').
    """
    from rich.table import Table

    from models.encoders import resolve_device
    from pipelines.matching import service

    query = service.SearchQuery(track_id, sighting_id, image_path)  # exactly one, checked before any work
    window = [
        parse_start_time(t, opt) if t is not None else None for t, opt in ((after, "--after"), (before, "--before"))
    ]
    if window[0] is not None and window[1] is not None and window[0] > window[1]:
        raise UsageError(f"--after {after} is later than --before {before}")
    settings = command_settings()
    db = open_command_db(db_path)
    device_name = resolve_device(device or settings.device)
    searcher = service.make_searcher(db, index_kind, device_name)
    options = service.SearchOptions(
        top_k=top_k,
        per_track=not per_sighting,
        samples_per_track=expand,
        track_similarity=track_similarity,
        rerank=rerank,
    )
    filters = service.SearchFilters(
        cameras=list(cameras) or None,
        exclude_cameras=list(exclude_cameras),
        after=window[0],
        before=window[1],
        other_cameras_only=other_cameras,
        include_static=include_static,
    )
    encoder = None
    if image_path is not None:
        from reid_app.ingest_runner import load_query_encoder

        encoder = load_query_encoder(db, settings, device_name, reid)
    results = service.run_search(searcher, query, options, filters, encoder)
    query = (
        f"track {track_id}"
        if track_id is not None
        else f"sighting {sighting_id}"
        if sighting_id is not None
        else f"image {image_path}"
    )
    table = Table(title=f"Matches for {query}")
    zone = zone_label([m.sighting.timestamp for r in results for m in r.sightings[:1]])
    from pipelines.matching.explain import describe_parts

    for name in (
        "rank",
        "camera",
        "track",
        "local id",
        "identity",
        f"seen at ({zone})",
        "sighting",
        "from",
        "to",
        "sightings",
        "score",
        "note",
    ):
        table.add_column(
            name,
            justify="right"
            if name in ("rank", "track", "local id", "identity", "sighting", "sightings", "score")
            else "left",
        )
    for rank, r in enumerate(results, 1):
        note = (
            "confirmed" if r.confirmed else ("" if r.rerank_distance is None else f"re-ranked {r.rerank_distance:.3f}")
        )
        for i, match in enumerate(r.sightings if expand > 1 else r.sightings[:1]):
            first = i == 0
            table.add_row(
                str(rank) if first else "",
                r.camera if first else "",
                str(r.track_id) if first else "",
                str(r.local_track_id) if first else "",
                str(r.identity_id or "") if first else "",
                format_time(match.sighting.timestamp),
                str(match.sighting.id),
                format_time(r.first_timestamp) if first else "",
                format_time(r.last_timestamp) if first else "",
                str(r.num_sightings) if first else "",
                f"{(r.score if first else match.score):.3f}",
                note if first else "",
            )
    stdout_console().print(table)
    why = [(rank, r) for rank, r in enumerate(results, 1) if r.parts]
    if why:
        lines = ["Why they match (cosine of each body part; a part counts where keypoints show it in both):"]
        lines += [f"  {rank:>2}. track {r.track_id}: {describe_parts(r.parts)}" for rank, r in why]
        stdout_console().print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)
    if not results:
        stderr_console().print("no matching tracks (check the filters)", markup=False, highlight=False)
    db.close()


def _ranges_text(ranges) -> str:
    return ", ".join(f"{format_time(s)}-{format_time(e)}" for s, e, _ in ranges)


@click.command()
@click.option("--db", "db_path", metavar="PATH", help=_DB_HELP)
@click.option("--recluster", is_flag=True, help="Cluster the tracks into identities again before listing.")
@click.option(
    "--threshold",
    type=float,
    default=None,
    help="With --recluster: the average-linkage cosine "
    "threshold [default: the stored one, else the re-id model's own (0.575 for the shipped model), else "
    "0.75].",
)
@click.option(
    "--min-cameras",
    type=click.IntRange(1, 100000),
    default=1,
    show_default=True,
    help="List only identities seen by at least this many cameras.",
)
@click.option("--identity", "identity_id", type=DB_ID, default=None, help="Show one identity's tracks.")
def identities(db_path, recluster, threshold, min_cameras, identity_id) -> None:
    """List the global identities: tracks of all cameras grouped into people, with cameras and time ranges.

    Identities are made after every ingest and feedback by constrained agglomerative clustering (tracks of one
    camera that overlap in time are different people; so are tracks of two cameras at the same instant unless the
    cameras are marked overlapping with 'reid-app cameras --overlap').
    """
    from rich.table import Table

    from pipelines.matching.service import identity_detail, list_identities

    if threshold is not None and not recluster:
        raise UsageError("--threshold applies to --recluster; add --recluster")
    if threshold is not None and not -1 <= finite_option(threshold, "--threshold", -1.0) <= 1:
        raise UsageError(f"--threshold is a cosine similarity between -1 and 1, got {threshold}")
    db = open_command_db(db_path)
    listing = list_identities(db, recluster, threshold)
    report, summaries, names = listing.report, listing.identities, listing.labels
    if report is not None:
        _print(
            f"clustered {report.tracks} tracks into {report.identities} identities ({report.multi_camera} seen "
            f"by several cameras) at threshold {report.threshold:.2f} in {report.seconds:.2f} s"
        )
    if identity_id is not None:
        _identity_detail(identity_detail(db, identity_id))
        db.close()
        return
    table = Table(title=f"Identities in {db.location}")
    shown = [s for s in summaries if len(s.cameras) >= min_cameras]
    zone = zone_label([t for s in shown for t in (s.first_timestamp, s.last_timestamp)])
    for name in (
        "identity",
        "cameras",
        "tracks",
        f"first seen ({zone})",
        f"last seen ({zone})",
        "where (time ranges)",
        "confidence",
        "name",
    ):
        table.add_column(name, justify="right" if name in ("identity", "cameras", "tracks", "confidence") else "left")
    for s in shown:
        where = "; ".join(f"{cam}: {_ranges_text(r)}" for cam, r in s.cameras.items())
        table.add_row(
            str(s.id),
            str(len(s.cameras)),
            str(len(s.track_ids)),
            format_time(s.first_timestamp),
            format_time(s.last_timestamp),
            where,
            confidence_text(s.confidence, len(s.track_ids)),
            names.get(s.id, ("", ""))[0],
        )
    stdout_console().print(table)
    _print(
        f"{len(shown)} of {len(summaries)} identities shown; details: reid-app identities --identity ID; "
        f"evidence: reid-app export-identity --identity ID --out DIR"
    )
    short, long_ = listing.unencoded
    if short or long_:
        from pipelines.ingest.track_cleanup import unencoded_reasons

        _print(
            f"{short + long_} track(s) have no descriptor and are in no identity ({unencoded_reasons(short, long_)})"
        )
    static = listing.static_tracks
    if static:
        _print(
            f"{len(static)} static track{'s' if len(static) > 1 else ''} (boxes that never moved, e.g. an empty "
            f"chair: {', '.join(map(str, sorted(static)[:10]))}) belong to no identity; 'reid-app search "
            f"--include-static' shows them"
        )
    db.close()


def _identity_detail(detail) -> None:
    from rich.table import Table

    summary = detail.summary
    title = (
        f"Identity {summary.id}"
        + (f" '{detail.label}'" if detail.label else "")
        + f" (confidence {confidence_text(summary.confidence, len(summary.track_ids))})"
    )
    table = Table(title=title, caption=detail.note or None)
    zone = zone_label([t for track in detail.tracks for t in (track.first_timestamp, track.last_timestamp)])
    for name in ("camera", "track", "local id", f"from ({zone})", f"to ({zone})", "sightings"):
        table.add_column(name, justify="right" if name in ("track", "local id", "sightings") else "left")
    for t in detail.tracks:
        table.add_row(
            t.camera,
            str(t.id),
            str(t.local_track_id),
            format_time(t.first_timestamp),
            format_time(t.last_timestamp),
            str(t.num_sightings),
        )
    stdout_console().print(table)


@click.group()
def feedback() -> None:
    """Correct the matching: confirm or reject a pair of tracks, merge or split identities.

    Verdicts are stored, recorded in the audit log and honoured at once: identities are re-clustered, a rejected
    pair is never matched again, a confirmed pair always is.
    """


def _after_feedback(report, db, tracks: Sequence[int] = ()) -> None:
    from pipelines.matching.service import identities_of_tracks

    where = identities_of_tracks(db, tracks)
    placed = ", ".join(f"track {t} -> identity {where[t]}" for t in tracks if t in where)
    for change in report.changes:
        _print(f"changed: {change}")
    _print(f"saved; {report.identities} identities now" + (f" ({placed})" if placed else ""))
    db.close()


def _pair_command(name: str, summary: str):
    """A ``feedback NAME TRACK_A TRACK_B`` command running ``pipelines.matching.feedback.NAME``."""

    @feedback.command(name, help=summary)
    @click.argument("track_a", type=DB_ID)
    @click.argument("track_b", type=DB_ID)
    @click.option("--db", "db_path", metavar="PATH", help=_DB_HELP)
    def command(track_a, track_b, db_path) -> None:
        from pipelines.matching import service as actions

        db = open_command_db(db_path)
        _after_feedback(getattr(actions, name)(db, track_a, track_b), db, [track_a, track_b])

    return command


_pair_command("confirm", "Record that tracks TRACK_A and TRACK_B show the same person.")
_pair_command("reject", "Record that tracks TRACK_A and TRACK_B show different people.")
_pair_command("forget", "Delete the confirmation or rejection of tracks TRACK_A and TRACK_B.")


@feedback.command("label")
@click.argument("identity_id", type=DB_ID)
@click.argument("name", required=False)
@click.option("--note", default="", help="A note kept with the name (what is known of this person).")
@click.option("--clear", is_flag=True, help="Remove the identity's name.")
@click.option("--db", "db_path", metavar="PATH", help=_DB_HELP)
def label_command(identity_id, name, note, clear, db_path) -> None:
    """Name identity IDENTITY_ID (a person of interest, e.g. "Suspect A"); shown in 'identities' and in evidence."""
    from pipelines.matching.service import label

    if clear == (name is not None):
        raise UsageError("give a NAME, or --clear to remove the name")
    db = open_command_db(db_path)
    _print(f"changed: {label(db, identity_id, None if clear else name, note)}")
    db.close()


@feedback.command("undo")
@click.option("--db", "db_path", metavar="PATH", help=_DB_HELP)
def undo_command(db_path) -> None:
    """Take back the newest confirm, reject, forget, merge or split not yet undone (repeat to go further back)."""
    from pipelines.matching.service import undo

    db = open_command_db(db_path)
    _after_feedback(undo(db), db)


@feedback.command()
@click.argument("identity_a", type=DB_ID)
@click.argument("identity_b", type=DB_ID)
@click.option("--db", "db_path", metavar="PATH", help=_DB_HELP)
def merge(identity_a, identity_b, db_path) -> None:
    """Merge identities IDENTITY_A and IDENTITY_B into one person."""
    from pipelines.matching.service import merge as run

    db = open_command_db(db_path)
    report = run(db, identity_a, identity_b)
    _after_feedback(report, db, report.subject_tracks[:1])


@feedback.command()
@click.argument("identity_id", type=DB_ID)
@click.argument("tracks", type=DB_ID, nargs=-1, required=True)
@click.option("--db", "db_path", metavar="PATH", help=_DB_HELP)
def split(identity_id, tracks, db_path) -> None:
    """Split TRACKS off identity IDENTITY_ID into a new identity."""
    from pipelines.matching.service import split as run

    db = open_command_db(db_path)
    _after_feedback(run(db, identity_id, tracks), db, list(tracks[:1]))


@click.command()
@click.option("--db", "db_path", metavar="PATH", help=_DB_HELP)
@click.option(
    "--overlap",
    "overlap",
    default=None,
    metavar="CAM,CAM[,...]",
    help="Mark these cameras as seeing a common area (one person may be in them at the same instant).",
)
@click.option(
    "--no-overlap", "no_overlap", default=None, metavar="CAM,CAM[,...]", help="Unmark these cameras as overlapping."
)
def cameras(db_path, overlap, no_overlap) -> None:
    """List the cameras with their videos, and mark which cameras overlap (see 'reid-app identities')."""
    from rich.table import Table

    from pipelines.matching.service import camera_overlaps, list_cameras, set_camera_overlap

    db = open_command_db(db_path)
    for spec, value in ((overlap, True), (no_overlap, False)):
        if spec is not None:
            try:
                set_camera_overlap(db, spec.split(","), value)
            except UsageError as exc:
                raise UsageError(f"{exc}, separated by commas") from None
    partners_of = camera_overlaps(db)
    table = Table(title=f"Cameras in {db.location}")
    for name in ("camera", "videos", "complete", "duration s", "tracks", "overlaps with"):
        table.add_column(name, justify="left" if name in ("camera", "overlaps with") else "right")
    for cam in list_cameras(db):
        partners = partners_of.get(cam.name, [])
        table.add_row(
            cam.name,
            str(len(cam.videos)),
            str(sum(v.finished for v in cam.videos)),
            f"{cam.duration_s:.1f}",
            str(cam.tracks),
            ", ".join(partners),
        )
    stdout_console().print(table)
    db.close()


@click.command("export-identity")
@click.option("--db", "db_path", metavar="PATH", help=_DB_HELP)
@click.option("--identity", "identity_id", type=DB_ID, required=True, help="The identity to export.")
@click.option("--out", "out_dir", required=True, metavar="DIR", help="Output folder (created when missing).")
@click.option("--clips", is_flag=True, help="Also cut an H.264 MP4 clip of each track from the source videos.")
@click.option(
    "--clip-margin",
    type=float,
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="Seconds added before and after each track in its clip.",
)
@click.option(
    "--redact/--no-redact",
    default=True,
    show_default=True,
    help="Blur every other person (bystanders) in the crops and clips, by their tracked boxes; the "
    "manifest records it. --no-redact exports the source pixels, for a court that asks for the "
    "original. The source footage is never changed.",
)
def export_identity(db_path, identity_id, out_dir, clips, clip_margin, redact) -> None:
    """Write the evidence of one identity: an HTML case report, per camera time ranges, full-resolution crops, a
    JSON and a CSV summary, optionally H.264 clips with camera, time, track and identity burned in, and a
    manifest.json with the SHA-256 of every source video and exported file. Recorded in the audit log."""
    from pipelines.matching.service import export_identity as run

    finite_option(clip_margin, "--clip-margin")
    db = open_command_db(db_path)
    err = stderr_console()
    report = run(
        db,
        identity_id,
        Path(out_dir),
        clips=clips,
        clip_margin_s=clip_margin,
        redact=redact,
        on_progress=lambda text: err.print(f"reid-app: {text}", markup=False, highlight=False),
    )
    for note in report.notes:
        err.print(f"reid-app: {note}", markup=False, highlight=False, soft_wrap=True)
    _print(
        f"identity {identity_id}: case report {report.html_path}, manifest {report.manifest_path} (SHA-256 of "
        f"sources and files), {report.json_path.name}, {report.csv_path.name}, {report.thumbnails} crops"
        + (f", {len(report.clips)} H.264 clips" if clips else "")
        + ("; bystanders blurred" if redact else "; not redacted: bystanders visible (--no-redact)")
    )
    if report.unconfirmed_warning:
        _print(f"unconfirmed: {report.unconfirmed_warning}")
    db.close()


@click.command()
@click.option("--db", "db_path", metavar="PATH", help=_DB_HELP)
@click.option(
    "--action",
    default=None,
    help="Only this action (search, confirm, reject, forget, merge, split, cluster, overlap, export, retention).",
)
@click.option("--limit", type=click.IntRange(1, 10**9), default=50, show_default=True, help="Rows shown, newest first.")
def audit(db_path, action, limit) -> None:
    """Show the audit log: every search and feedback action with its time (UTC)."""
    import json

    from rich.table import Table

    from pipelines.matching.service import read_log

    db = open_command_db(db_path)
    table = Table(title=f"Audit log of {db.location}")
    for name in ("id", "time (UTC)", "action", "details"):
        table.add_column(name, overflow="fold")
    for entry in read_log(db, action, limit):
        table.add_row(
            str(entry.id),
            entry.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            entry.action,
            json.dumps(entry.details, sort_keys=True),
        )
    stdout_console().print(table)
    db.close()


@click.command()
@click.option("--db", "db_path", metavar="PATH", help=_DB_HELP)
def check(db_path) -> None:
    """Check a database thoroughly: SQLite's integrity_check of every page and a foreign-key check.

    Every command already runs a quick check when it opens a database and refuses to write to a damaged one; this
    reads the whole file (seconds per GB). Exit code 0 when sound, 2 when damaged.
    """
    from common.errors import DatabaseError
    from common.redaction import redact_url
    from pipelines.matching.service import integrity_problems

    location = db_path or command_settings().db
    problems = integrity_problems(location)
    for problem in problems:
        stderr_console().print(f"reid-app: {problem}", markup=False, highlight=False, soft_wrap=True)
    if problems:
        raise DatabaseError(
            f"database {redact_url(str(location))} is damaged ({len(problems)} problem"
            f"{'s' if len(problems) > 1 else ''} above); restore it from a backup"
        )
    _print(f"database {redact_url(str(location))}: ok (integrity and foreign keys checked)")


@click.command()
@click.option("--db", "db_path", metavar="PATH", help=_DB_HELP)
@click.option(
    "--older-than",
    "older_than",
    required=True,
    metavar="AGE",
    help="Remove footage that ended more than AGE ago (30d, 12h, 90m or seconds), with its tracks, "
    "sightings, embeddings and emptied identities.",
)
@click.option(
    "--recordings",
    "recordings_dir",
    default=None,
    metavar="DIR",
    help="The live recordings folder whose files are deleted with their rows [default: 'recordings' "
    "beside the database]. Files elsewhere (footage you ingested) are never deleted.",
)
@click.option("--dry-run", is_flag=True, help="Say what would be removed; change nothing.")
def retention(db_path, older_than, recordings_dir, dry_run) -> None:
    """Apply retention: remove what was recorded longer ago than --older-than (run it from cron or a timer).

    One transaction with an audit entry ('reid-app audit --action retention'). Footage without a known start time
    has no age and is kept.
    """
    from datetime import datetime, timezone

    from common.settings import recordings_dir_for
    from pipelines.evidence.retention import apply_retention
    from pipelines.live.site import parse_duration

    age = parse_duration(older_than, "--older-than")
    location = db_path or command_settings().db
    db = open_command_db(db_path)
    folder = Path(recordings_dir) if recordings_dir else recordings_dir_for(location)
    report = apply_retention(db, age, folder, dry_run)
    db.close()
    p = report.purge
    when = datetime.fromtimestamp(report.cutoff, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    verb = "would remove" if dry_run else "removed"
    _print(
        f"{verb} {len(p.videos)} video(s) whose footage ended before {when}: {p.tracks} tracks, "
        f"{p.sightings} sightings, {p.embeddings} embeddings, {p.identities} emptied identities"
        + ("" if dry_run else f"; {len(report.files_deleted)} recording file(s) deleted")
    )
    if dry_run:
        _print(
            f"would delete {len(report.files_deleted)} recording file(s) (only files reid-app recorded in "
            f"{folder}; footage you ingested is never deleted)"
            + "".join(f"\n  {path}" for path in report.files_deleted)
        )
    for path, reason in report.files_failed:
        stderr_console().print(
            f"reid-app: warning: cannot delete {path} ({reason})", markup=False, highlight=False, soft_wrap=True
        )


COMMANDS = [search, identities, feedback, cameras, export_identity, audit, check, retention]
