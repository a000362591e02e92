"""Live cameras: end-to-end latency and how many cameras at 5 analysed frames/s this machine sustains.

    python benchmarks/live.py                        # 1, 2, 4, 6 and 8 cameras, 40 s each
    python benchmarks/live.py --cameras 1,4,6 --seconds 60 --device cuda

Each run starts a real RTSP server (GStreamer's, ``tests/live/rtsp_server.py``; Debian packages as in ``.ci/run``)
publishing N cameras in real time (the four lab clips with a keyframe every second, repeated for N > 4) and runs
the product path of ``reid-app watch`` (``pipelines.live.watch.LiveSite`` with the models of ``prepare_ingest``: default
detector, the shared yolov8n-pose export top-down, and the shipped re-id model) into a fresh database. Before the live
runs, 10 s of lab cam0 are ingested
from the file and its best-encoded track is put on the watchlist, so the cameras showing cam0 raise alerts (repeat
suppression shortened to 5 s to get more samples).

Printed per camera count:
- analysed frames/s per camera (mean over cameras of frames analysed / seconds watched) against the target;
- store latency: seconds from a frame's arrival to the commit of its sightings (p50 / p95), first and second half
  of the run (a growing second half means the consumer falls behind);
- alert latency: seconds from the arrival of the frame that made a track match to the alert (p50 / max);
- CPU use of the process (user + system seconds per wall second).
A count is *sustained* when the cameras average at least 90% of the target rate and the store latency's p95 does
not grow by more than 1 s from the first half to the second. It does not pass or fail.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))
WEIGHTS = SHARED / "weights"
LAB = SHARED / "data" / "videos" / "lab_4cam"


def _percentile(values, q) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cameras", default="1,2,4,6,8", help="camera counts to run, comma-separated")
    parser.add_argument("--seconds", type=float, default=40.0, help="seconds watched per camera count")
    parser.add_argument("--fps", type=float, default=5.0, help="analysed frames/s per camera (the target)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--detector", default=str(WEIGHTS / "yolov8n_int8_openvino_model"))
    parser.add_argument("--pose", default=str(WEIGHTS / "yolov8n-pose_int8_openvino_model"))
    args = parser.parse_args()
    os.environ.setdefault("YOLO_VERBOSE", "False")

    from common.settings import load_settings
    from pipelines.ingest.files import IngestJob, IngestProgress
    from pipelines.live.site import SiteCamera
    from pipelines.live.watch import LiveSite, WatchOptions
    from pipelines.live.watchlist import AlertDispatcher, load_matcher, watch_track
    from reid_app.ingest_runner import IngestChoices, prepare_ingest
    from storage.database import open_database
    from tests.conftest import free_port
    from tests.rtsp import RtspServer, _server_available, make_short_gop_clip

    why = _server_available()
    if why:
        raise SystemExit(f"benchmarks/live.py needs the RTSP server: {why}")
    counts = [int(c) for c in args.cameras.split(",")]
    choices = IngestChoices(detector=args.detector, pose=args.pose, device=args.device, analysis_fps=args.fps)
    t0 = time.perf_counter()
    prepared = prepare_ingest(choices, load_settings())
    print(f"models loaded in {time.perf_counter() - t0:.1f} s (device {prepared.device}); {os.cpu_count()} CPU cores")
    work = Path(tempfile.mkdtemp(prefix="reid-live-bench-"))
    clips = {f"cam{i}": make_short_gop_clip(f"cam{i}", 268, work / f"cam{i}.mp4") for i in range(4)}
    rows = []
    for count in counts:
        folder = work / f"run{count}"
        folder.mkdir()
        db = open_database(folder / "live.db")
        stop = threading.Event()
        prepared.run(db, [IngestJob(LAB / "cam0.mp4", "cam0-file")], IngestProgress(), stop)  # the watched person
        from sqlalchemy import text

        with db.session() as session:
            best = session.execute(text("SELECT id FROM tracks ORDER BY num_embeddings DESC LIMIT 1")).scalar()
        watch_track(db, best, "person of interest")
        served = {f"live{i}": clips[f"cam{i % 4}"] for i in range(count)}
        server = RtspServer(free_port(), served).start()
        cameras = [SiteCamera(name, server.url(name), fps=args.fps) for name in served]
        matcher = load_matcher(db, repeat_s=5.0)
        alerts = AlertDispatcher(db)
        options = WatchOptions(ingest=prepared.options, segment_s=30.0)
        site = LiveSite(
            db,
            cameras,
            {},
            folder / "recordings",
            prepared.encoder,
            prepared.make_tracker,
            prepared.make_pose,
            options,
            matcher,
            alerts,
        )
        first_half: list[float] = []

        def halfway():
            first_half.extend(site.store_delays)

        timer = threading.Timer(args.seconds / 2, halfway)
        stopper = threading.Timer(args.seconds, stop.set)
        cpu0, wall0 = _cpu_seconds(), time.perf_counter()
        timer.start()
        stopper.start()
        summary = site.run(stop)
        cpu = (_cpu_seconds() - cpu0) / (time.perf_counter() - wall0)
        server.kill()
        db.close()
        delays = list(site.store_delays)
        second_half = delays[len(first_half) :]
        fps = [c.frames / args.seconds for c in summary.cameras]
        mean_fps = float(np.mean(fps))
        sustained = mean_fps >= 0.9 * args.fps and _percentile(second_half, 95) <= _percentile(first_half, 95) + 1.0
        rows.append(
            (
                count,
                mean_fps,
                min(fps),
                _percentile(first_half, 50),
                _percentile(first_half, 95),
                _percentile(second_half, 50),
                _percentile(second_half, 95),
                _percentile(list(site.alert_delays), 50),
                max(site.alert_delays, default=float("nan")),
                len(site.alert_delays),
                cpu,
                sustained,
            )
        )
        print(
            f"{count} camera(s): {mean_fps:.2f} analysed frames/s per camera, store latency p95 "
            f"{rows[-1][4]:.2f} -> {rows[-1][6]:.2f} s, {len(site.alert_delays)} alerts",
            flush=True,
        )
    print()
    print(
        f"Live cameras at {args.fps:g} analysed frames/s, {args.seconds:g} s each ({os.cpu_count()} CPU cores, "
        f"device {prepared.device})"
    )
    print(
        "| cameras | frames/s per camera (mean, min) | store latency p50 / p95, 1st half | 2nd half | "
        "alert latency p50 / max (alerts) | CPU cores busy | sustained |"
    )
    print("|---|---|---|---|---|---|---|")
    for count, mean_fps, low, p50a, p95a, p50b, p95b, a50, amax, n, cpu, ok in rows:
        print(
            f"| {count} | {mean_fps:.2f}, {low:.2f} | {p50a:.2f} / {p95a:.2f} s | {p50b:.2f} / {p95b:.2f} s | "
            f"{a50:.2f} / {amax:.2f} s ({n}) | {cpu:.2f} | {'yes' if ok else 'no'} |"
        )


if __name__ == "__main__":
    main()
