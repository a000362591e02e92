"""Tracking quality of reid-app against MOTChallenge ground truth, with the Ultralytics trackers beside it.

    python benchmarks/tracking.py                      # PETS S2L1 at 5 and 10 frames/s, TUD-Campus at 5
    python benchmarks/tracking.py --sequences pets --fps 5
    python benchmarks/tracking.py --tiles 2            # also sliced detection (reid-app ingest --tiles 2)

For each sequence and analysis rate:

- reid-app: the real ``reid-app ingest VIDEO --fps F`` (default detector, pose, re-id model and tracker) into a new
  SQLite database; its stored sightings are the tracker output, scored twice: with each track as an id, and with
  each track's identity as the id (tracks in no identity keep their own). Static tracks (hidden from search and
  identities) are left out, as the product leaves them out.
- the peers a user would write: Ultralytics ``model.track(frame, persist=True, tracker=...)`` with ByteTrack and
  BoT-SORT on the same detector weights and exactly the frames reid-app analysed
  (``pipelines.ingest.video.VideoSource``).

Every metric (MOTA, IDF1, HOTA, ID switches, fragmentations, recall, precision) is TrackEval's
(``pipelines.ingest.mot_eval``), IoU 0.5, on the analysed frames only. Ground truth: ``../shared/data/mot`` (PETS boxes
x0.625 for the 480x360 clip; MOT frame N is the clip's frame N-1). Prints a table; it does not pass or fail.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))


@dataclass(frozen=True)
class Sequence:
    name: str
    video: Path
    ground_truth: Path
    scale: float


SEQUENCES = {
    "pets": Sequence(
        "PETS09-S2L1",
        SHARED / "data" / "videos" / "pets2009_s2l1_view001.avi",
        SHARED / "data" / "mot" / "PETS09-S2L1" / "gt.txt",
        0.625,
    ),
    "tud": Sequence(
        "TUD-Campus",
        SHARED / "data" / "mot" / "TUD-Campus" / "TUD-Campus.mp4",
        SHARED / "data" / "mot" / "TUD-Campus" / "gt.txt",
        1.0,
    ),
}


def analysed_frames(video: Path, fps: float) -> list:
    """The frames ``reid-app ingest --fps`` analyses (same reader, same rule)."""
    from pipelines.ingest.video import VideoSource

    return list(VideoSource(video, fps).frames())


def run_reid_app(
    sequence: Sequence, fps: float, folder: Path, tiles: int = 1, detector_size: int = 640, extra: Sequence[str] = ()
) -> tuple[dict, dict, dict, float]:
    """Ingest with the CLI (``--tiles``, ``--detector-size``); returns (boxes by track, boxes by identity, track
    facts, seconds)."""
    from pipelines.ingest.mot_eval import boxes_by_frame

    db = folder / f"{sequence.name}-{fps:g}-{detector_size}{f'-tiles{tiles}' if tiles > 1 else ''}.db"
    if db.exists():  # ingest would skip the known video and the table would score an older run
        raise SystemExit(f"{db} exists from an earlier run: remove it or choose another --keep folder")
    started = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "reid_app.cli",
            "ingest",
            str(sequence.video),
            "--db",
            str(db),
            "--fps",
            f"{fps:g}",
            "--camera",
            sequence.name,
            "--tiles",
            str(tiles),
            "--detector-size",
            str(detector_size),
            *extra,
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, YOLO_VERBOSE="False"),
        cwd=ROOT,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"reid-app ingest failed: {result.stderr.strip()[-500:]}")
    con = sqlite3.connect(db)
    try:
        rows = con.execute(
            "SELECT s.frame_index, s.track_id, s.x1, s.y1, s.x2, s.y2, it.identity_id "
            "FROM sightings s JOIN tracks t ON t.id = s.track_id "
            "LEFT JOIN identity_tracks it ON it.track_id = s.track_id WHERE NOT t.static"
        ).fetchall()
        facts = dict(
            zip(
                ("tracks", "with_descriptor", "static"),
                con.execute(
                    "SELECT sum(NOT static), sum(NOT static AND descriptor IS NOT NULL), sum(static) FROM tracks"
                ).fetchone(),
            )
        )
        facts["identities"] = con.execute("SELECT count(*) FROM identities").fetchone()[0]
    finally:
        con.close()
    by_track = boxes_by_frame((f, t, *box) for f, t, *box, _ in rows)
    by_identity = boxes_by_frame((f, i if i is not None else -t, *box) for f, t, *box, i in rows)
    return by_track, by_identity, facts, seconds


def run_peer(tracker: str, detector: Path, frames: list) -> tuple[dict, float]:
    """Ultralytics ``track(persist=True)`` on ``frames`` with ``tracker`` (``bytetrack`` or ``botsort``)."""
    from ultralytics import YOLO

    from pipelines.ingest.mot_eval import boxes_by_frame

    model = YOLO(str(detector), task="detect")
    rows = []
    started = time.perf_counter()
    for frame in frames:
        result = model.track(frame.image, persist=True, tracker=f"{tracker}.yaml", classes=[0], verbose=False)[0]
        if result.boxes is None or result.boxes.id is None:
            continue
        for box, oid in zip(result.boxes.xyxy.cpu().numpy(), result.boxes.id.cpu().numpy()):
            rows.append((frame.index, int(oid), *map(float, box)))
    return boxes_by_frame(rows), time.perf_counter() - started


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequences", default="pets,tud", help="comma-separated: pets, tud [pets,tud]")
    parser.add_argument("--fps", type=float, nargs="+", default=[5.0], help="analysis rates [5]")
    parser.add_argument("--pets-also-at", type=float, default=10.0, help="one more rate for PETS (0: none) [10]")
    parser.add_argument("--peers", default="bytetrack,botsort", help="Ultralytics trackers beside reid-app")
    parser.add_argument(
        "--tiles",
        type=int,
        nargs="*",
        default=[],
        metavar="N",
        help="also run reid-app with --tiles N (sliced detection) at the first rate",
    )
    parser.add_argument(
        "--detector-size",
        type=int,
        default=640,
        metavar="PIXELS",
        help="reid-app's detector input (320 on PETS sees people as small as 960x720 footage would)",
    )
    parser.add_argument(
        "--ingest-args",
        default="",
        metavar="ARGS",
        help="more 'reid-app ingest' options for every reid-app run, e.g. '--tracker botsort'",
    )
    parser.add_argument("--keep", metavar="DIR", help="keep the databases in DIR (default: a temporary folder)")
    args = parser.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    from common.settings import load_settings
    from common.weights import resolve_weights
    from pipelines.ingest.mot_eval import read_mot_ground_truth, score_tracking

    settings = load_settings()
    detector = resolve_weights(settings.detector, settings.weights_dirs).path
    if detector is None:
        raise SystemExit(f"detector weights {settings.detector!r} not found; set REID_APP_WEIGHTS")
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="reid-tracking-"))
    folder.mkdir(parents=True, exist_ok=True)
    table = Table(title="Tracking against MOTChallenge ground truth (TrackEval, IoU 0.5, analysed frames only)")
    for column in (
        "sequence",
        "fps",
        "tracker",
        "IDF1",
        "MOTA",
        "HOTA",
        "IDSW",
        "Frag",
        "recall",
        "precision",
        "ids / people",
        "encoded",
        "seconds",
    ):
        table.add_column(column, justify="left" if column in ("sequence", "tracker") else "right")
    console = Console(width=170)
    for key in args.sequences.split(","):
        sequence = SEQUENCES[key.strip()]
        truth = read_mot_ground_truth(sequence.ground_truth, sequence.scale)
        people = len({oid for boxes in truth.values() for oid, _ in boxes})
        rates = list(args.fps) + ([args.pets_also_at] if key == "pets" and args.pets_also_at else [])
        for fps in rates:
            frames = analysed_frames(sequence.video, fps)
            indexes = [f.index for f in frames]
            console.print(f"{sequence.name} at {fps:g} frames/s: {len(indexes)} frames", highlight=False)
            by_track, by_identity, facts, seconds = run_reid_app(
                sequence, fps, folder, 1, args.detector_size, args.ingest_args.split()
            )
            runs = [
                ("reid-app tracks", by_track, f"{facts['with_descriptor']}/{facts['tracks']}", seconds),
                ("reid-app identities", by_identity, "", seconds),
            ]
            for tiles in args.tiles if fps == rates[0] else []:
                by_track, _, facts, seconds = run_reid_app(
                    sequence, fps, folder, tiles, args.detector_size, args.ingest_args.split()
                )
                runs.append(
                    (
                        f"reid-app tracks, --tiles {tiles}",
                        by_track,
                        f"{facts['with_descriptor']}/{facts['tracks']}",
                        seconds,
                    )
                )
            for peer in filter(None, args.peers.split(",")):
                boxes, peer_seconds = run_peer(peer.strip(), detector, frames)
                runs.append((f"ultralytics {peer.strip()}", boxes, "", peer_seconds))
            for name, boxes, encoded, took in runs:
                s = score_tracking(truth, boxes, indexes)
                table.add_row(
                    sequence.name,
                    f"{fps:g}",
                    name,
                    f"{s['IDF1']:.1f}",
                    f"{s['MOTA']:.1f}",
                    f"{s['HOTA']:.1f}",
                    str(s["IDSW"]),
                    str(s["Frag"]),
                    f"{s['recall']:.1f}",
                    f"{s['precision']:.1f}",
                    f"{s['tracker_ids']} / {people}",
                    encoded,
                    f"{took:.1f}",
                )
    console.print(table)
    console.print(
        "encoded: tracks with a descriptor / tracks (static tracks left out); seconds: reid-app's whole "
        "ingest (detection, pose, re-id, storage) vs the peer's detection and tracking only"
    )


if __name__ == "__main__":
    main()
