"""Ingest speed and memory report: per-stage time, end-to-end analysed frames/s, peak memory vs video length.

    python benchmarks/ingest.py                       # lab cam0 + cam1 and PETS 2009 from ../shared
    python benchmarks/ingest.py a.mp4 b.mp4 --device cuda --reid model.onnx

Each measurement runs in a fresh process (so its peak RSS is its own) and ingests into a temporary database.
Targets (issue 2): on CPU, everything after detection (pose + crop + encode + store) adds at most 30% to the
detect+track time; peak memory stays flat as the video gets longer. This prints numbers; it does not pass or fail.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))

STAGES = ("decode", "detect_track", "pose", "crop", "encode", "store")


def _measure(args: argparse.Namespace) -> dict:
    """Ingest the videos in this process and return timings and peak RSS (run via --child)."""
    os.environ.setdefault("YOLO_VERBOSE", "False")
    from common.errors import word_settings
    from models.encoders import load_encoder, resolve_device
    from models.pose import DetectorKeypoints, NoPose
    from models.tracking import PersonTracker
    from pipelines.ingest.files import IngestJob, IngestOptions, ingest
    from storage.database import open_database

    device = resolve_device(args.device)
    encoder = load_encoder(args.reid, device, args.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        db = open_database(Path(tmp) / "bench.db")
        jobs = [IngestJob(Path(v), f"cam{i}") for i, v in enumerate(args.videos)]
        options = IngestOptions(analysis_fps=args.fps, batch_size=args.batch_size, max_duration_s=args.duration)
        t0 = time.perf_counter()
        summaries = ingest(
            db,
            jobs,
            encoder,
            lambda: PersonTracker(args.detector, device="cpu"),
            lambda t: DetectorKeypoints() if t.gives_keypoints else NoPose(),
            options,
        )
        wall = time.perf_counter() - t0
        db.close()
    failed = [word_settings(s.message) for s in summaries if s.status != "done"]
    if failed:
        raise SystemExit(f"ingest failed: {failed}")
    stages = {k: sum(s.times.as_dict()[k] for s in summaries) for k in STAGES}
    return {
        "wall_s": wall,
        "frames": sum(s.frames_analysed for s in summaries),
        "embeddings": sum(s.embeddings for s in summaries),
        "sightings": sum(s.sightings for s in summaries),
        "stages": stages,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "device": device,
    }


def _child(args: argparse.Namespace, videos: list[str], duration: float | None) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        *videos,
        "--detector",
        str(args.detector),
        "--reid",
        str(args.reid),
        "--fps",
        str(args.fps),
        "--batch-size",
        str(args.batch_size),
        "--device",
        args.device,
    ]
    if duration is not None:
        cmd += ["--duration", str(duration)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"benchmark run failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _report_speed(result: dict, videos: list[str]) -> None:
    stages = result["stages"]
    total = sum(stages.values())
    print(f"\nPer-stage time, {len(videos)} camera(s), {result['frames']} analysed frames, device {result['device']}")
    print(f"{'stage':<14}{'seconds':>10}{'share':>9}{'ms/frame':>10}")
    for name in STAGES:
        print(
            f"{name:<14}{stages[name]:>10.2f}{100 * stages[name] / total:>8.1f}%"
            f"{1000 * stages[name] / max(result['frames'], 1):>10.1f}"
        )
    after = stages["pose"] + stages["crop"] + stages["encode"] + stages["store"]
    print(
        f"after detection (pose+crop+encode+store) = {100 * after / stages['detect_track']:.1f}% of detect+track "
        f"(target <= 30% on CPU)"
    )
    print(
        f"end-to-end: {result['frames'] / result['wall_s']:.2f} analysed frames/s over all cameras "
        f"({result['wall_s']:.1f} s wall, {result['sightings']} sightings, {result['embeddings']} embeddings)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", nargs="*", help="videos to ingest (default: lab cam0 and cam1 from ../shared)")
    parser.add_argument("--detector", default=str(SHARED / "weights" / "yolov8n-pose_int8_openvino_model"))
    parser.add_argument("--reid", default=str(SHARED / "weights" / "osnet_x0_25_msmt17.onnx"))
    parser.add_argument("--fps", type=float, default=5.0, help="analysis rate (frames/s)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--duration", type=float, default=None, help="seconds of each video to analyse")
    parser.add_argument(
        "--memory-video",
        default=str(SHARED / "data" / "videos" / "pets2009_s2l1_view001.avi"),
        help="video for the memory-vs-length check",
    )
    parser.add_argument("--memory-lengths", default="20,79", help="two or more durations in seconds")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_measure(args)))
        return
    videos = args.videos or [str(SHARED / "data" / "videos" / "lab_4cam" / f"cam{i}.mp4") for i in (0, 1)]
    print(
        f"reid-app ingest benchmark: detector {Path(args.detector).name}, re-id {Path(args.reid).name}, "
        f"{args.fps:g} analysed frames/s, {os.cpu_count()} CPU cores"
    )
    _report_speed(_child(args, videos, args.duration), videos)
    lengths = [float(x) for x in args.memory_lengths.split(",") if x]
    if Path(args.memory_video).exists() and lengths:
        print(f"\nPeak memory vs video length ({Path(args.memory_video).name})")
        print(f"{'seconds of video':>18}{'frames':>8}{'peak RSS MB':>13}")
        for length in lengths:
            r = _child(args, [args.memory_video], length)
            print(f"{length:>18.0f}{r['frames']:>8}{r['peak_rss_mb']:>13.0f}")


if __name__ == "__main__":
    main()
