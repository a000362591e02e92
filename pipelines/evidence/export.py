"""Evidence export of one identity: where and when the person was seen, with crops, summaries, clips, a case
report and a manifest of hashes, so that an investigator can show what was exported from what.

Layout of the output folder::

    identity-<ID>.json        summary: identity, model, per camera its time ranges and tracks with crops, and
                              why each track was linked: its similarity to the identity's reference track (the one
                              with most sightings), overall and per body part (``pipelines.matching.explain``)
    identity-<ID>.csv         one row per track: camera, times (UTC and local with its offset, or "time unknown"),
                              seconds into the video, files
    report.html               the case report: facts, a timeline per camera, the tracks, the crops
    manifest.json             SHA-256 of every source video and every exported file; reid-app version, model, database
    crops/<camera>/           every encoded sighting cut from the source video at full resolution (the stored
                              thumbnail when the source is gone), named by track, time and sighting
    clips/<camera>/           with clips: one H.264 MP4 per track (its time range plus a margin), the person boxed,
                              camera, date and time, track and identity burned in

Times: footage whose wall-clock start is unknown (no creation time, no ``--start``) is never given a 1970 date:
its times are "time unknown" with the seconds into the video. A camera's time ranges are its tracks' ranges
joined when they overlap or lie less than ``join_gap_s`` apart. A missing source video skips its clip (and its
crops fall back to the stored thumbnails) with a note; it never stops the export. Each export is recorded in the
audit log with the manifest's own SHA-256.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from common.errors import UsageError, setting
from common.neutralise import csv_cell
from common.timefmt import KNOWN_TIME_FROM
from pipelines.evidence.case_report import write_case_report
from pipelines.evidence.media import SightingBox, cut_clip, full_crops, sha256_file
from pipelines.evidence.redaction import METHOD as REDACTION_METHOD
from pipelines.evidence.redaction import BystanderBoxes
from pipelines.ingest.sampling import evenly_spaced
from pipelines.ingest.video import file_safe_name
from pipelines.matching.explain import describe_parts, explain_match, part_slices, visible_parts
from pipelines.matching.identities import join_ranges
from storage.audit import record
from storage.database import Database
from storage.evidence_reads import (
    TrackSighting,
    VideoFacts,
    bystander_boxes,
    sightings_of_tracks,
    videos_of_tracks,
)
from storage.feedback import SAME, load_verdicts
from storage.identities import labels, load_identities
from storage.model_registry import get_model, model_layout
from storage.reads import get_tracks, sighting_keypoints
from storage.schema import SCHEMA_VERSION

log = logging.getLogger(__name__)


def _reid_app_version() -> str:
    """The installed reid-app's version (package metadata), or "unknown" when it runs from an uninstalled tree."""
    try:
        return version("reid-app")
    except PackageNotFoundError:
        return "unknown"


@dataclass
class EvidenceReport:
    """What an export wrote: the summaries, the case report, the manifest, crops and clips, and notes."""

    json_path: Path
    csv_path: Path
    html_path: Optional[Path] = None
    manifest_path: Optional[Path] = None
    thumbnails: int = 0
    clips: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Every file this export wrote (what the manifest lists; never anything else in the folder).
    written: list[Path] = field(default_factory=list)
    #: Tracks linked to the identity's reference track by the machine's re-id suggestion only (no chain of
    #: investigator confirmations), and all tracks: an export with suggested links must say so.
    suggested: int = 0
    tracks: int = 0

    @property
    def unconfirmed_warning(self) -> Optional[str]:
        """The warning an export of machine-suggested links carries (None when an investigator confirmed every
        link, or the identity is one track)."""
        if not self.suggested:
            return None
        return (
            f"{self.suggested} of the {self.tracks} tracks are linked to this identity by the machine's re-id "
            f"suggestion only, not confirmed by an investigator: check them before presenting the export as "
            f"one person (the report marks each link)"
        )


def iso(timestamp: float) -> str:
    """ISO 8601 UTC of seconds since the epoch (millisecond precision); a time no calendar date can show (stored
    by an older reid-app) is written as ``"<seconds> s since 1970"`` instead of raising."""
    try:
        return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="milliseconds")
    except (ValueError, OverflowError, OSError):
        return f"{timestamp} s since 1970"


def local_iso(timestamp: float) -> str:
    """ISO 8601 in this machine's time zone, with its UTC offset (``2024-06-18T15:10:16.600+02:00``)."""
    try:
        return datetime.fromtimestamp(timestamp, timezone.utc).astimezone().isoformat(timespec="milliseconds")
    except (ValueError, OverflowError, OSError):
        return f"{timestamp} s since 1970"


def _time_fields(prefix: str, timestamp: float, video_start: float) -> dict:
    """``<prefix>`` (ISO UTC) and ``<prefix>_local`` (ISO with offset) when the wall-clock time is known, both
    None when the video's start is unknown; ``<prefix>_timestamp`` (the stored value: seconds since the epoch, or
    seconds into the video when its start is unknown) and ``<prefix>_s_in_video`` always."""
    known = video_start >= KNOWN_TIME_FROM
    return {
        prefix: iso(timestamp) if known else None,
        f"{prefix}_local": local_iso(timestamp) if known else None,
        f"{prefix}_timestamp": timestamp,
        f"{prefix}_s_in_video": round(timestamp - video_start, 3),
    }


def export_identity(
    db: Database,
    identity_id: int,
    out_dir: Path,
    clips: bool = False,
    clip_margin_s: float = 1.0,
    join_gap_s: float = 2.0,
    on_progress: Optional[Callable[[str], None]] = None,
    redact: bool = True,
) -> EvidenceReport:
    """Write the evidence of identity ``identity_id`` into ``out_dir`` (layout in the module docstring).

    Args:
        clips: also cut one H.264 clip per track from the source videos (slow: decodes and re-encodes).
        redact: blur every other person in the clips and crops (``pipelines.evidence.redaction``; recorded in the
            manifest); False exports the source pixels as they are (a court that asks for the original).
        clip_margin_s: seconds added before and after each track in its clip.
        join_gap_s: tracks of one camera closer than this (seconds) form one time range.
        on_progress: called with a short message before each slow step.

    Raises:
        UsageError: unknown identity, or ``out_dir`` cannot be created or is a file.
    """
    found = load_identities(db, identity_ids=[identity_id])
    if not found:
        raise UsageError(
            f"identity {identity_id} does not exist in {db.location}; list them with 'reid-app identities'"
        )
    identity = found[0]
    out_dir = Path(out_dir)
    _check_out_dir(db, out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UsageError(f"{setting('out')} {out_dir} is a file; give a folder") from None
    except OSError as exc:
        raise UsageError(f"cannot create {out_dir}: {exc.strerror or exc}") from None
    progress = on_progress or (lambda _text: None)
    tracks = get_tracks(db, identity.track_ids)
    videos = videos_of_tracks(db, list(tracks))
    sightings = sightings_of_tracks(db, list(tracks))
    model = get_model(db, identity.model_id)
    name, note = labels(db).get(identity_id, (None, None))
    stem = f"identity-{identity_id}"
    report = EvidenceReport(
        out_dir / f"{stem}.json", out_dir / f"{stem}.csv", out_dir / "report.html", out_dir / "manifest.json"
    )
    cameras: dict[str, list[int]] = {}
    for t in sorted(tracks.values(), key=lambda t: (t.camera, t.first_timestamp)):
        cameras.setdefault(t.camera, []).append(t.id)

    bystanders = _bystanders(db, {v.id: v for v in videos.values()}, identity.track_ids) if redact else {}
    matches = _why_linked(db, identity.model_id, tracks, sightings)
    confirmed = _confirmed_with_reference(db, identity.track_ids, matches)
    report.tracks = len(tracks)
    report.suggested = sum(1 for t in tracks if t not in confirmed)
    track_records = {}
    for camera, ids in cameras.items():
        for t in ids:
            link = (
                "reference"
                if (matches.get(t) or {}).get("reference") or len(tracks) == 1
                else "confirmed"
                if t in confirmed
                else "suggested"
            )
            track_records[t] = _export_track(
                tracks[t],
                videos[t],
                sightings[t],
                identity_id,
                out_dir,
                report,
                bystanders.get(videos[t].id),
                clip_margin_s if clips else None,
                matches.get(t),
                link,
                progress,
            )

    progress("hashing the source videos")
    sources = _hash_sources({videos[t].path: tracks[t].camera for t in tracks}, report)
    summary = _summary(
        db, identity, name, note, model, tracks, videos, cameras, track_records, join_gap_s, redact, report
    )
    report.json_path.write_text(json.dumps(summary, indent=2))
    _write_csv(report.csv_path, identity_id, cameras, track_records)
    write_case_report(report.html_path, summary)
    report.written += [report.json_path, report.csv_path, report.html_path]
    progress("hashing the exported files")
    manifest = _manifest(db, summary, sources, out_dir, report)
    report.manifest_path.write_text(json.dumps(manifest, indent=2))
    record(
        db,
        "export",
        identity=identity_id,
        out=str(out_dir.absolute()),
        files=len(manifest["files"]),
        clips=len(report.clips),
        manifest_sha256=sha256_file(report.manifest_path),
    )
    return report


def _summary(
    db: Database,
    identity,
    name: Optional[str],
    note: Optional[str],
    model,
    tracks: dict,
    videos: dict[int, VideoFacts],
    cameras: dict[str, list[int]],
    track_records: dict[int, dict],
    join_gap_s: float,
    redact: bool,
    report: EvidenceReport,
) -> dict:
    """The export's JSON summary (also what the case report shows): the identity, the model, each camera's time
    ranges and tracks, how the tracks are linked, the redaction and the notes."""
    identity_id = identity.id
    return {
        "identity": identity_id,
        "label": name,
        "note": note,
        "confidence": round(identity.confidence, 4),
        "threshold": identity.threshold,
        "model": {
            "id": identity.model_id,
            "name": model.name if model else None,
            "checkpoint_hash": model.checkpoint_hash if model else None,
        },
        "database": db.location,
        "exported_at": iso(datetime.now(timezone.utc).timestamp()),
        "reid_app_version": _reid_app_version(),
        "time_zone": datetime.now().astimezone().strftime("%Z (UTC%z)")
        if any(videos[t].start_time >= KNOWN_TIME_FROM for t in tracks)
        else "time unknown (the footage has no start time: times are seconds into each video)",
        "cameras": [
            {
                "camera": camera,
                "time_ranges": [
                    {**_range_times(s, e, videos[ts[0]].start_time), "duration_s": round(e - s, 3), "tracks": ts}
                    for s, e, ts in join_ranges(
                        [(tracks[t].first_timestamp, tracks[t].last_timestamp, t) for t in ids], join_gap_s
                    )
                ],
                "tracks": [track_records[t] for t in ids],
            }
            for camera, ids in cameras.items()
        ],
        "links": {"confirmed": len(tracks) - report.suggested, "suggested": report.suggested},
        "redaction": {"bystanders_blurred": True, "method": REDACTION_METHOD}
        if redact
        else {"bystanders_blurred": False, "method": "none: the source pixels, as asked (--no-redact)"},
        "unconfirmed_warning": report.unconfirmed_warning,
        "notes": report.notes,
    }


def _export_track(
    track,
    video: VideoFacts,
    sightings: list[TrackSighting],
    identity_id: int,
    out_dir: Path,
    report: EvidenceReport,
    bystanders: Optional[BystanderBoxes],
    clip_margin_s: Optional[float],
    match: Optional[dict],
    link: str,
    progress: Callable[[str], None],
) -> dict:
    """Write one track's crops (full resolution from the source video, else the stored thumbnails) and, with a
    ``clip_margin_s``, its clip; returns its record for the JSON and CSV."""
    t, camera = track.id, track.camera
    encoded = [s for s in sightings if s.thumbnail is not None]
    progress(f"crops of track {t} ({camera})")
    crops = full_crops(video.path, [SightingBox(s.id, s.frame_index, s.box) for s in encoded], bystanders)
    if len(crops) < len(encoded):
        report.notes.append(
            f"track {t}: {len(encoded) - len(crops)} crops are the stored thumbnails (the "
            f"source video {video.path} could not be read there)"
        )
    files, captions = [], []
    for s in encoded:
        path = out_dir / "crops" / file_safe_name(camera) / f"track{t}_{s.time_s:09.2f}s_sighting{s.id}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(crops.get(s.id, s.thumbnail))
        report.written.append(path)
        files.append(str(path.relative_to(out_dir)))
        captions.append(_caption(t, video.start_time, s.time_s))
        report.thumbnails += 1
    clip = None
    if clip_margin_s is not None:
        progress(f"clip of track {t} ({camera})")
        target = out_dir / "clips" / file_safe_name(camera) / f"track{t}.mp4"
        clip = _clip(video, track, identity_id, sightings, target, clip_margin_s, report, bystanders)
        if clip is not None:
            report.clips.append(clip)
            report.written.append(clip)
    return {
        "track_id": t,
        "local_track_id": track.local_track_id,
        "video": video.path,
        **_time_fields("start", track.first_timestamp, video.start_time),
        **_time_fields("end", track.last_timestamp, video.start_time),
        "sightings": track.num_sightings,
        "thumbnails": files,
        "thumbnail_captions": captions,
        "clip": str(clip.relative_to(out_dir)) if clip else None,
        "match": match,
        "link": link,
    }


#: Sightings per track whose keypoints decide which body parts are visible in the explanation.
EXPLAIN_SAMPLES = 8


def _caption(track_id: int, video_start: float, time_s: float) -> str:
    """A crop's caption: its track and its time (local, or seconds into the video when the start is unknown)."""
    if video_start >= KNOWN_TIME_FROM:
        return f"track {track_id}, {local_iso(video_start + time_s)[:22]}"
    return f"track {track_id}, {time_s:.1f} s into the video"


def _confirmed_with_reference(db: Database, track_ids: list[int], matches: dict[int, dict]) -> set[int]:
    """The tracks an investigator's confirmations link to the identity's reference track (one chain of "same"
    verdicts among its members), the reference included; for a one-track identity, that track."""
    reference = next((t for t, m in matches.items() if m and m.get("reference")), None)
    if reference is None or len(track_ids) == 1:
        return set(track_ids)
    members = set(track_ids)
    links: dict[int, set[int]] = {}
    for v in load_verdicts(db, track_ids):
        if v.verdict == SAME and v.track_a in members and v.track_b in members:
            links.setdefault(v.track_a, set()).add(v.track_b)
            links.setdefault(v.track_b, set()).add(v.track_a)
    reached, frontier = {reference}, [reference]
    while frontier:
        for other in links.get(frontier.pop(), ()):
            if other not in reached:
                reached.add(other)
                frontier.append(other)
    return reached


def _why_linked(db: Database, model_id: int, tracks: dict, sightings: dict) -> dict[int, dict]:
    """Per track: its cosine to the identity's reference track (most sightings) and per body part, with a line for
    people (``"upper body 0.91, legs 0.62, head not visible"``); the reference itself gets ``reference: true``."""
    with_descriptor = [t for t, info in tracks.items() if info.descriptor is not None]
    if not with_descriptor:
        return {}
    reference = max(with_descriptor, key=lambda t: (tracks[t].num_sightings, -t))
    layout = model_layout(db, model_id)
    names = [name for name, _, _ in part_slices(layout)]
    picked = {}
    for t in with_descriptor:
        ids = [s.id for s in sightings[t] if s.thumbnail is not None] or [s.id for s in sightings[t]]
        picked[t] = [ids[i] for i in evenly_spaced(len(ids), EXPLAIN_SAMPLES)]
    observed = sighting_keypoints(db, [s for ids in picked.values() for s in ids]) if names else {}
    visible = {t: visible_parts([observed[s] for s in picked[t] if s in observed], names) for t in with_descriptor}
    out = {}
    for t in with_descriptor:
        if t == reference:
            out[t] = {"reference": True, "similarity": 1.0, "parts": [], "explanation": "reference track"}
            continue
        parts = explain_match(
            layout, tracks[reference].descriptor, tracks[t].descriptor, visible[reference], visible[t]
        )
        out[t] = {
            "reference": False,
            "reference_track": reference,
            "similarity": round(float(tracks[reference].descriptor @ tracks[t].descriptor), 4),
            "parts": [
                {"name": p.name, "similarity": None if p.similarity is None else round(p.similarity, 4)} for p in parts
            ],
            "explanation": describe_parts(parts),
        }
    return out


def _range_times(start: float, end: float, video_start: float) -> dict:
    first, last = _time_fields("start", start, video_start), _time_fields("end", end, video_start)
    return {k: v for k, v in {**first, **last}.items() if not k.endswith("_s_in_video")}


def _write_csv(path: Path, identity_id: int, cameras: dict[str, list[int]], records: dict[int, dict]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            [
                "identity",
                "camera",
                "track_id",
                "local_track_id",
                "start_utc",
                "end_utc",
                "start_local",
                "end_local",
                "start_s_in_video",
                "end_s_in_video",
                "sightings",
                "video",
                "crops",
                "clip",
            ]
        )
        for camera, ids in cameras.items():
            for t in ids:
                r = records[t]
                writer.writerow(
                    [
                        csv_cell(v)
                        for v in (
                            identity_id,
                            camera,
                            t,
                            r["local_track_id"],
                            r["start"] or "time unknown",
                            r["end"] or "time unknown",
                            r["start_local"] or "time unknown",
                            r["end_local"] or "time unknown",
                            r["start_s_in_video"],
                            r["end_s_in_video"],
                            r["sightings"],
                            r["video"],
                            len(r["thumbnails"]),
                            r["clip"] or "",
                        )
                    ]
                )


def _hash_sources(sources: dict[str, str], report: EvidenceReport) -> list[dict]:
    """Path, size and SHA-256 of every source video (None, with a note, when it is gone)."""
    listed = []
    for path, camera in sorted(sources.items()):
        try:
            listed.append(
                {"camera": camera, "path": path, "bytes": Path(path).stat().st_size, "sha256": sha256_file(Path(path))}
            )
        except OSError as exc:
            listed.append({"camera": camera, "path": path, "bytes": None, "sha256": None})
            report.notes.append(f"source video {path} could not be hashed ({exc.strerror or exc})")
    return listed


def _check_out_dir(db: Database, out_dir: Path) -> None:
    """Refuse an output folder that holds another export (its manifest would be overwritten and its files left
    uncertified) or the database (whose files change under the hashes)."""
    if (out_dir / "manifest.json").exists():
        raise UsageError(
            f"{setting('out')} {out_dir} already holds an export (manifest.json); give a new or empty folder"
        )
    if db.path is not None and out_dir.exists():
        folder, database = out_dir.resolve(), db.path.resolve()
        if database.is_relative_to(folder):
            raise UsageError(
                f"{setting('out')} {out_dir} holds the database {db.path}; give a folder of its own for the export"
            )


def _manifest(db: Database, summary: dict, sources: list[dict], out_dir: Path, report: EvidenceReport) -> dict:
    """The manifest: the export's facts, the source videos' hashes and the SHA-256 of every file written."""
    files = sorted(set(report.written))
    return {
        "reid_app_version": summary["reid_app_version"],
        "created_at": summary["exported_at"],
        "identity": summary["identity"],
        "model": summary["model"],
        "database": {"location": db.location, "schema_version": SCHEMA_VERSION},
        "sources": sources,
        "redaction": summary["redaction"],
        "notes": report.notes,
        "files": [
            {"path": str(p.relative_to(out_dir)), "bytes": p.stat().st_size, "sha256": sha256_file(p)} for p in files
        ],
    }


def _bystanders(db: Database, videos: dict[int, VideoFacts], exported: list[int]) -> dict[int, BystanderBoxes]:
    """Per video: where the people other than the exported identity's tracks are (static tracks left out)."""
    return {
        video_id: BystanderBoxes(bystander_boxes(db, video_id, exported), video.fps or 25.0)
        for video_id, video in videos.items()
    }


def _clip(
    video: VideoFacts,
    track,
    identity_id: int,
    sightings: list[TrackSighting],
    path: Path,
    margin_s: float,
    report: EvidenceReport,
    bystanders: Optional[BystanderBoxes] = None,
) -> Optional[Path]:
    """Cut the track's time range plus ``margin_s`` to an H.264 clip with the facts burned in."""
    fps = video.fps or 25.0
    start_s, end_s = track.first_timestamp - video.start_time, track.last_timestamp - video.start_time
    first = max(0, int((start_s - margin_s) * fps))
    last = min(video.frame_count - 1, int(np.ceil((end_s + margin_s) * fps)))
    known = video.start_time >= KNOWN_TIME_FROM

    def caption(frame_index: int) -> list[str]:
        offset = frame_index / fps
        when = (
            local_iso(video.start_time + offset).replace("T", " ")
            if known
            else f"time unknown, {offset:.2f} s into the video"
        )
        return [f"camera {track.camera}  {when}", f"identity {identity_id}  track {track.id}"]

    boxes = [SightingBox(s.id, s.frame_index, s.box) for s in sightings]
    if not cut_clip(video.path, fps, video.frame_count, boxes, path, first, last, caption, bystanders):
        report.notes.append(
            f"clip of {Path(video.path).name} skipped: the source video {video.path} cannot be "
            f"opened (moved or deleted?)"
        )
        return None
    return path
