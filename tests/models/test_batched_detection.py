"""One detector shared by every camera: batched calls give the same boxes as per-camera calls; errors reach every
caller; the per-camera trackers keep their own ids."""

import threading

import numpy as np
import pytest

from models.detection import BatchingDetector, PersonDetections, PersonDetector
from models.tracking import CameraTracker, PersonTracker
from pipelines.ingest.video import VideoSource
from tests.conftest import LAB, PLAIN_DETECTOR, _require


def _first_frames(count: int = 2) -> list[np.ndarray]:
    frames = []
    for i in range(4):
        source = VideoSource(_require(LAB / f"cam{i}.mp4"), analysis_fps=1)
        for n, frame in enumerate(source.frames()):
            frames.append(frame.image)
            if n + 1 == count:
                break
    return frames


@pytest.mark.slow
def test_batched_detection_gives_the_same_boxes_as_one_call_per_camera():
    detector = PersonDetector(_require(PLAIN_DETECTOR))
    frames = _first_frames()
    batched = detector.detect(frames)
    assert sum(len(d) for d in batched) >= 8  # 2-3 people per lab camera
    for image, together in zip(frames, batched):
        alone = detector.detect([image])[0]
        assert len(alone) == len(together)
        np.testing.assert_allclose(together.xyxy, alone.xyxy, atol=0.5)
        np.testing.assert_allclose(together.conf, alone.conf, atol=1e-3)

    shared = BatchingDetector(detector)
    results, errors = {}, []

    def camera(i):
        try:
            results[i] = shared.detect([frames[i]])[0]
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=camera, args=(i,)) for i in range(len(frames))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and sorted(results) == list(range(len(frames)))
    for i, together in enumerate(batched):
        np.testing.assert_allclose(results[i].xyxy, together.xyxy, atol=0.5)
    assert shared.images == len(frames) and shared.calls <= len(frames)


class _Failing:
    gives_keypoints = False
    task = "detect"

    def detect(self, images):
        raise RuntimeError("simulated inference failure")


def test_an_inference_error_reaches_every_caller_and_nothing_hangs():
    shared = BatchingDetector(_Failing())
    outcomes = []

    def camera():
        try:
            shared.detect([np.zeros((8, 8, 3), np.uint8)])
            outcomes.append("ok")
        except RuntimeError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=camera) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert not any(t.is_alive() for t in threads)
    assert outcomes == ["simulated inference failure"] * 3


def test_camera_trackers_keep_their_own_ids_and_report_the_detections_own_boxes():
    boxes = np.array([[10, 10, 40, 100], [200, 20, 230, 110]], np.float32)
    conf = np.array([0.9, 0.8], np.float32)
    a, b = CameraTracker(), CameraTracker()
    for step in range(3):
        moved = boxes + np.float32(4 * step)
        out_a = a.update(PersonDetections(moved, conf))
        out_b = b.update(PersonDetections(moved[:1], conf[:1]))
    assert sorted(out_a.track_ids.tolist()) == [1, 2] and out_b.track_ids.tolist() == [1]
    np.testing.assert_array_equal(out_a.xyxy[np.argsort(out_a.track_ids)], moved)  # not the Kalman estimate
    assert a.has_tracks and b.has_tracks


def test_a_small_fast_person_at_five_frames_per_second_keeps_one_track():
    # 15 x 45 px, moving 8 px between analysed frames with a low score: score fusion used to break this track
    tracker = CameraTracker()
    ids = set()
    for step in range(10):
        x = 50 + 8 * step
        out = tracker.update(
            PersonDetections(np.array([[x, 100, x + 15, 145]], np.float32), np.array([0.4], np.float32))
        )
        ids.update(out.track_ids.tolist())
    assert len(ids) == 1


def test_person_tracker_uses_a_shared_detector():
    class Fixed:
        gives_keypoints = False

        def detect(self, images):
            return [
                PersonDetections(np.array([[5, 5, 50, 150]], np.float32), np.array([0.9], np.float32)) for _ in images
            ]

    tracker = PersonTracker(detector=Fixed())
    tracker.update(np.zeros((200, 200, 3), np.uint8))
    people = tracker.update(np.zeros((200, 200, 3), np.uint8))
    assert [p.track_id for p in people] == [1] and people[0].box.tolist() == [5, 5, 50, 150]
    still = [tracker.repeat() for _ in range(3)]  # motion gating: nothing moved, the person is tracked on
    assert [[p.track_id for p in frame] for frame in still] == [[1]] * 3
