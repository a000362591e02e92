"""Detection recall per detector configuration: person-frames found (tracked and stored) against a careful reference.

    python benchmarks/recall.py                          # PETS 2009 (first 30 s) and the four lab cameras
    python benchmarks/recall.py --duration 10 --configs pose-0.25,det-0.10

Each configuration runs the same path as ``reid-app ingest``: one ``models.detection.PersonDetector`` call for the
frame of every camera (as the shared batching detector makes; ``-square``: Ultralytics' own run of the export,
letterboxed into 640 x 640; the others at the frame's own aspect, longest side 640 or the size named), then
``models.tracking.CameraTracker`` per camera, at ``--fps`` analysed frames/s; its tracked boxes are what ingest
stores as sightings.

The reference is built independently of the configurations: the plain YOLOv8n detector on the whole frame *and* on
a 2 x 2 grid of overlapping tiles (each tile enlarged to the model's 640 px input, so people down to about half the
size are found), confidence >= ``--reference-conf``, tile boxes cut by an inner tile border dropped, then merged by
non-maximum suppression. A reference person-frame is *found* by a configuration when one of its tracked boxes in
that frame overlaps it with IoU >= 0.5 (greedy one-to-one matching, best IoU first).

Prints, per clip and configuration: reference person-frames, found, recall, recall of small people (reference box
under 60 px tall), tracks, tracked boxes (sightings), boxes matching nothing in the reference, detector ms/frame.
It prints numbers; it does not pass or fail (target, issue 14: the default finds >= 90% of the reference).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))
WEIGHTS = SHARED / "weights"
POSE = WEIGHTS / "yolov8n-pose_int8_openvino_model"
PLAIN = WEIGHTS / "yolov8n_int8_openvino_model"
SMALL_PX = 60.0

#: name -> (detector weights, detection confidence, input's longest side in pixels, native aspect)
CONFIGS = {
    "pose-0.25": (POSE, 0.25, 640, False),
    "det-0.10-square": (PLAIN, 0.10, 640, False),
    "det-0.10": (PLAIN, 0.10, 640, True),
    "det-0.10-480": (PLAIN, 0.10, 480, True),
    "det-0.10-800": (PLAIN, 0.10, 800, True),
    "det-0.10-960": (PLAIN, 0.10, 960, True),
}


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of ``float [N, 4]`` against ``float [M, 4]`` xyxy boxes (pixels) -> ``float [N, M]`` (torchvision)."""
    import torch
    from torchvision.ops import box_iou

    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    return box_iou(torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32)).numpy()


def greedy_matches(reference: np.ndarray, found: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Boolean ``[N]``: which reference boxes are matched one-to-one (best IoU first) by a found box."""
    iou = iou_matrix(reference, found)
    matched = np.zeros(len(reference), bool)
    used = np.zeros(len(found), bool)
    for flat in np.argsort(-iou, axis=None):
        i, j = np.unravel_index(flat, iou.shape)
        if iou[i, j] < threshold:
            break
        if not matched[i] and not used[j]:
            matched[i] = used[j] = True
    return matched


def reference_boxes(model, image: np.ndarray, conf: float) -> np.ndarray:
    """Person boxes ``float32 [N, 4]`` from the whole frame plus a 2 x 2 grid of tiles overlapping by 20%."""
    import torch
    from torchvision.ops import nms

    h, w = image.shape[:2]
    tw, th = int(w * 0.6), int(h * 0.6)
    views = [(0, 0, w, h)] + [(x, y, x + tw, y + th) for y in (0, h - th) for x in (0, w - tw)]
    boxes, scores = [], []
    results = model.predict(
        [image[y1:y2, x1:x2] for x1, y1, x2, y2 in views], classes=[0], conf=conf, imgsz=640, verbose=False
    )
    for (x1, y1, x2, y2), result in zip(views, results):
        b = result.boxes.xyxy.cpu().numpy().astype(np.float32)
        s = result.boxes.conf.cpu().numpy().astype(np.float32)
        if (x2 - x1, y2 - y1) != (w, h):
            inner = np.ones(len(b), bool)  # drop people cut by a border that is inside the frame
            if x1 > 0:
                inner &= b[:, 0] > 2
            if x2 < w:
                inner &= b[:, 2] < (x2 - x1) - 2
            if y1 > 0:
                inner &= b[:, 1] > 2
            if y2 < h:
                inner &= b[:, 3] < (y2 - y1) - 2
            b, s = b[inner], s[inner]
            b = b + np.array([x1, y1, x1, y1], np.float32)
        boxes.append(b)
        scores.append(s)
    b, s = np.concatenate(boxes), np.concatenate(scores)
    if len(b) == 0:
        return b.reshape(0, 4)
    keep = nms(torch.from_numpy(b), torch.from_numpy(s), 0.5).numpy()
    return b[keep]


@dataclass
class Tally:
    reference: int = 0
    found: int = 0
    small_reference: int = 0
    small_found: int = 0
    boxes: int = 0
    unmatched_boxes: int = 0
    tracks: set = field(default_factory=set)
    detect_s: float = 0.0
    frames: int = 0

    def add(self, reference: np.ndarray, found: np.ndarray) -> None:
        matched = greedy_matches(reference, found)
        small = (reference[:, 3] - reference[:, 1]) < SMALL_PX if len(reference) else np.zeros(0, bool)
        self.reference += len(reference)
        self.found += int(matched.sum())
        self.small_reference += int(small.sum())
        self.small_found += int((matched & small).sum())
        self.boxes += len(found)
        self.unmatched_boxes += int(len(found) - greedy_matches(found, reference).sum()) if len(found) else 0


def frames_of(video: Path, fps: float, duration: float | None):
    from pipelines.ingest.video import VideoSource

    return list(VideoSource(video, fps, duration).frames())


def evaluate_clip(name: str, videos: list[Path], configs: list[str], args) -> dict[str, Tally]:
    from models.detection import PersonDetector, load_yolo
    from models.tracking import CameraTracker

    reference_model = load_yolo(PLAIN)
    clips = [frames_of(v, args.fps, args.duration) for v in videos]
    references = [[reference_boxes(reference_model, f.image, args.reference_conf) for f in frames] for frames in clips]
    tallies = {}
    for config in configs:
        weights, conf, size, native = CONFIGS[config]
        detector = PersonDetector(weights, confidence=conf, image_size=size, native_aspect=native)
        trackers = [CameraTracker() for _ in clips]
        tally = Tally()
        for t in range(max(len(c) for c in clips)):
            cams = [c for c in range(len(clips)) if t < len(clips[c])]
            t0 = time.perf_counter()  # one call for the frame of every camera, as ingest's shared detector makes
            detections = detector.detect([clips[c][t].image for c in cams])
            tracked = [trackers[c].update(d, clips[c][t].image) for c, d in zip(cams, detections)]
            tally.detect_s += time.perf_counter() - t0
            for c, people in zip(cams, tracked):
                tally.frames += 1
                tally.add(references[c][t], people.xyxy)
                tally.tracks.update((c, int(i)) for i in people.track_ids)
        tallies[config] = tally
    print(
        f"\n{name}: {sum(len(c) for c in clips)} analysed frames at {args.fps:g} frames/s, "
        f"{len(videos)} camera(s); reference: plain detector, whole frame + 2x2 tiles, conf >= "
        f"{args.reference_conf:g}"
    )
    print(
        f"{'config':<16}{'ref':>6}{'found':>7}{'recall':>8}{'small ref':>10}{'small rec':>10}{'tracks':>7}"
        f"{'boxes':>7}{'unmatched':>10}{'ms/frame':>9}"
    )
    for config, t in tallies.items():
        small = f"{t.small_found / t.small_reference:.2f}" if t.small_reference else "-"
        print(
            f"{config:<16}{t.reference:>6}{t.found:>7}{t.found / max(t.reference, 1):>8.2f}{t.small_reference:>10}"
            f"{small:>10}{len(t.tracks):>7}{t.boxes:>7}{t.unmatched_boxes:>10}"
            f"{1000 * t.detect_s / max(t.frames, 1):>9.1f}"
        )
    return tallies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fps", type=float, default=5.0, help="analysed frames per second of video")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of each clip")
    parser.add_argument("--reference-conf", type=float, default=0.35, help="reference detector confidence")
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated, of {', '.join(CONFIGS)}")
    parser.add_argument("--clips", default="pets,lab", help="pets, lab or both")
    args = parser.parse_args()
    os.environ.setdefault("YOLO_VERBOSE", "False")
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        raise SystemExit(f"unknown configuration(s) {unknown}; choose from {list(CONFIGS)}")
    for path in (POSE, PLAIN):
        if not path.exists():
            raise SystemExit(f"{path} is absent: this benchmark needs ../shared/weights")
    clips = {
        "pets": ("PETS 2009 S2.L1 view 1", [SHARED / "data/videos/pets2009_s2l1_view001.avi"]),
        "lab": ("lab, 4 cameras", [SHARED / f"data/videos/lab_4cam/cam{i}.mp4" for i in range(4)]),
    }
    for key in [c.strip() for c in args.clips.split(",")]:
        name, videos = clips[key]
        evaluate_clip(name, videos, configs, args)


if __name__ == "__main__":
    main()
