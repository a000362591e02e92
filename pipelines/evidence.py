"""Evidence export of one identity: where and when the person was seen, with thumbnails, summaries and clips.

Layout of the output folder::

    identity-<ID>.json        summary: identity, model, per camera its time ranges and tracks with thumbnails
    identity-<ID>.csv         one row per track: camera, times (ISO 8601 UTC and seconds into the video), files
    thumbnails/<camera>/      the JPEG thumbnail of every encoded sighting, named by track, time and sighting
    clips/<camera>/           with clips: one MP4 per track, the track's time range plus a margin, the person boxed

A camera's time ranges are its tracks' ranges joined when they overlap or lie less than ``join_gap_s`` apart.
A missing source video skips that clip with a note; it never stops the export.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

import cv2
import numpy as np
from sqlalchemy import select

from pipelines.identities import join_ranges
from reid_app.errors import UsageError
from storage.database import Database
from storage.identities import load_identities
from storage.repository import get_model, get_tracks
from storage.schema import Sighting, Track, Video

log = logging.getLogger(__name__)


@dataclass
class EvidenceReport:
    """What an export wrote: the summary files, thumbnails and clips written, and notes (skipped clips)."""

    json_path: Path
    csv_path: Path
    thumbnails: int = 0
    clips: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def iso(timestamp: float) -> str:
    """ISO 8601 UTC of seconds since the epoch (millisecond precision); a time no calendar date can show (stored
    by an older reid-app) is written as ``"<seconds> s since 1970"`` instead of raising."""
    try:
        return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="milliseconds")
    except (ValueError, OverflowError, OSError):
        return f"{timestamp} s since 1970"


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "camera"


def export_identity(db: Database, identity_id: int, out_dir: Path, clips: bool = False, clip_margin_s: float = 1.0,
                    join_gap_s: float = 2.0, on_progress: Optional[Callable[[str], None]] = None) -> EvidenceReport:
    """Write the evidence of identity ``identity_id`` into ``out_dir`` (layout in the module docstring).

    Args:
        clips: also cut one MP4 clip per track from the source videos (slow: decodes and re-encodes).
        clip_margin_s: seconds added before and after each track in its clip.
        join_gap_s: tracks of one camera closer than this (seconds) form one time range.
        on_progress: called with a short message before each clip.

    Raises:
        UsageError: unknown identity, or ``out_dir`` cannot be created or is a file.
    """
    found = load_identities(db, identity_ids=[identity_id])
    if not found:
        raise UsageError(f"identity {identity_id} does not exist in {db.location}; list them with "
                         f"'reid-app identities'")
    identity = found[0]
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UsageError(f"--out {out_dir} is a file; give a folder") from None
    except OSError as exc:
        raise UsageError(f"cannot create {out_dir}: {exc.strerror or exc}") from None
    tracks = get_tracks(db, identity.track_ids)
    with db.session() as session:
        videos = {t: session.get(Video, session.get(Track, t).video_id) for t in tracks}
        sightings = {t: session.execute(select(Sighting.id, Sighting.frame_index, Sighting.time_s,
                                               Sighting.timestamp, Sighting.x1, Sighting.y1, Sighting.x2,
                                               Sighting.y2, Sighting.thumbnail)
                                        .where(Sighting.track_id == t).order_by(Sighting.frame_index)).all()
                     for t in tracks}
    model = get_model(db, identity.model_id)
    stem = f"identity-{identity_id}"
    report = EvidenceReport(out_dir / f"{stem}.json", out_dir / f"{stem}.csv")
    cameras: dict[str, list[int]] = {}
    for t in sorted(tracks.values(), key=lambda t: (t.camera, t.first_timestamp)):
        cameras.setdefault(t.camera, []).append(t.id)

    track_records = {}
    for camera, ids in cameras.items():
        for t in ids:
            track, video = tracks[t], videos[t]
            thumbs = []
            for sid, frame, time_s, ts, *_box, thumb in sightings[t]:
                if thumb is None:
                    continue
                path = out_dir / "thumbnails" / _safe(camera) / f"track{t}_{time_s:09.2f}s_sighting{sid}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(thumb)
                thumbs.append(str(path.relative_to(out_dir)))
                report.thumbnails += 1
            clip = None
            if clips:
                if on_progress:
                    on_progress(f"clip of track {t} ({camera})")
                clip = _cut_clip(video, sightings[t], out_dir / "clips" / _safe(camera) / f"track{t}.mp4",
                                 track.first_timestamp - video.start_time, track.last_timestamp - video.start_time,
                                 clip_margin_s, report)
                if clip is not None:
                    report.clips.append(clip)
            track_records[t] = {
                "track_id": t, "local_track_id": track.local_track_id, "video": video.path,
                "start": iso(track.first_timestamp), "end": iso(track.last_timestamp),
                "start_timestamp": track.first_timestamp, "end_timestamp": track.last_timestamp,
                "start_s_in_video": round(track.first_timestamp - video.start_time, 3),
                "end_s_in_video": round(track.last_timestamp - video.start_time, 3),
                "sightings": track.num_sightings, "thumbnails": thumbs,
                "clip": str(clip.relative_to(out_dir)) if clip else None,
            }

    summary = {
        "identity": identity_id, "confidence": round(identity.confidence, 4), "threshold": identity.threshold,
        "model": {"id": identity.model_id, "name": model.name if model else None,
                  "checkpoint_hash": model.checkpoint_hash if model else None},
        "database": db.location, "exported_at": iso(datetime.now(timezone.utc).timestamp()),
        "cameras": [{
            "camera": camera,
            "time_ranges": [{"start": iso(s), "end": iso(e), "start_timestamp": s, "end_timestamp": e,
                             "duration_s": round(e - s, 3), "tracks": ts}
                            for s, e, ts in join_ranges([(tracks[t].first_timestamp, tracks[t].last_timestamp, t)
                                                         for t in ids], join_gap_s)],
            "tracks": [track_records[t] for t in ids],
        } for camera, ids in cameras.items()],
        "notes": report.notes,
    }
    report.json_path.write_text(json.dumps(summary, indent=2))
    with report.csv_path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["identity", "camera", "track_id", "local_track_id", "start", "end", "start_s_in_video",
                         "end_s_in_video", "sightings", "video", "thumbnails", "clip"])
        for camera, ids in cameras.items():
            for t in ids:
                r = track_records[t]
                writer.writerow([identity_id, camera, t, r["local_track_id"], r["start"], r["end"],
                                 r["start_s_in_video"], r["end_s_in_video"], r["sightings"], r["video"],
                                 len(r["thumbnails"]), r["clip"] or ""])
    return report


def _cut_clip(video: Video, sightings, path: Path, start_s: float, end_s: float, margin_s: float,
              report: EvidenceReport) -> Optional[Path]:
    """Cut ``[start_s - margin, end_s + margin]`` (seconds into the video) to an MP4 with the person boxed."""
    capture = cv2.VideoCapture(video.path)
    if not capture.isOpened():
        report.notes.append(f"clip of {Path(video.path).name} skipped: the source video {video.path} cannot be "
                            f"opened (moved or deleted?)")
        return None
    try:
        fps = video.fps or capture.get(cv2.CAP_PROP_FPS) or 25.0
        first = max(0, int((start_s - margin_s) * fps))
        last = min(video.frame_count - 1, int(np.ceil((end_s + margin_s) * fps)))
        boxes = {frame: (x1, y1, x2, y2) for _sid, frame, _t, _ts, x1, y1, x2, y2, _th in sightings}
        known = np.array(sorted(boxes))
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (video.width, video.height))
        if not writer.isOpened():
            report.notes.append(f"clip {path.name} skipped: OpenCV cannot write MP4 here")
            return None
        capture.set(cv2.CAP_PROP_POS_FRAMES, first)
        hold = max(1, int(round(fps)))  # a box is shown until the next sighting, at most one second
        for frame_index in range(first, last + 1):
            ok, frame = capture.read()
            if not ok:
                break
            if len(known):
                i = np.searchsorted(known, frame_index, side="right") - 1
                if i >= 0 and frame_index - known[i] <= hold:
                    x1, y1, x2, y2 = (int(round(v)) for v in boxes[int(known[i])])
                    cv2.rectangle(frame, (x1, y1), (x2, y2), (0, 0, 255), 3)
            cv2.putText(frame, f"{frame_index / fps:7.2f}s", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9,
                        (255, 255, 255), 2)
            writer.write(frame)
        writer.release()
        return path
    finally:
        capture.release()
