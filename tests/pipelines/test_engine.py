"""The multi-camera engine shared by ingest and watch: typed events, failure isolation, one encoder call for all
cameras, and a clean stop. Camera pipelines here are small fakes that post what a real one posts (no weights)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from common.errors import InputVideoError
from common.types import Detection, Observation, StageTimes
from pipelines.ingest.engine import Analysed, CameraThreads, Ended, Failed, Observed, encode_batches


def _observation(camera: str, frame: int, selected: bool) -> Observation:
    detection = Detection(track_id=1, box=np.array([0, 0, 10, 20], np.float32), score=0.9)
    crop = np.full((20, 10, 3), frame, np.uint8) if selected else None
    boxes = np.zeros((4, 4), np.float32) if selected else None
    return Observation(camera, frame, frame / 5.0, detection, 0.5 if selected else 0.0, crop, boxes)


class _FakePipeline:
    """Posts ``frames`` batches of two observations (the first selected), as ``CameraPipeline.run`` does."""

    def __init__(self, camera: str, frames: int, block: threading.Event | None = None):
        self.camera, self.frames, self.block = camera, frames, block
        self.source = type("Source", (), {"warning": None})()
        self.frames_skipped, self.duplicates_dropped, self.estimates_pose = 1, 0, True

    def run(self, emit, should_stop, on_frame=None, flush_on_stop=False) -> StageTimes:
        for n in range(1, self.frames + 1):
            if should_stop():
                break
            emit([_observation(self.camera, n, True), _observation(self.camera, n, False)], n)
            if self.block is not None:
                self.block.wait(5)
        return StageTimes()


class _CountingEncoder:
    """Encodes a crop as a one-hot of its first pixel (its frame number); counts calls."""

    dims = 8

    def __init__(self):
        self.calls = 0

    def encode(self, crops, part_boxes):
        self.calls += 1
        assert part_boxes.shape == (len(crops), 4, 4)
        out = np.zeros((len(crops), self.dims), np.float32)
        out[np.arange(len(crops)), [int(c[0, 0, 0]) % self.dims for c in crops]] = 1.0
        return out


def _all_events(threads: CameraThreads) -> list:
    events = []
    while threads.running:
        events += list(threads.events(timeout=1.0))
    return events


def test_each_camera_posts_typed_events_and_a_failing_camera_does_not_stop_the_others():
    threads = CameraThreads(threading.Event())

    def broken_source():
        raise InputVideoError("cam1.mp4 is not a video")

    def crashing_tracker():
        raise RuntimeError("driver fault")

    threads.start(0, "cam0", lambda ch: ch.run(lambda: _FakePipeline("cam0", 3)))
    threads.start(1, "cam1", lambda ch: ch.run(broken_source))
    threads.start(2, "cam2", lambda ch: ch.run(crashing_tracker))
    events = _all_events(threads)
    threads.close()

    by_camera = {i: [e for e in events if e.camera == i] for i in range(3)}
    assert [type(e) for e in by_camera[0]] == [Observed, Observed, Observed, Analysed, Ended]
    assert [e.frames_analysed for e in by_camera[0][:3]] == [1, 2, 3]
    assert by_camera[0][3].frames_skipped == 1 and by_camera[0][3].estimates_pose
    assert by_camera[1] == [Failed(1, "cam1.mp4 is not a video", unexpected=False), Ended(1)]
    assert by_camera[2][0].unexpected and "RuntimeError: driver fault" in by_camera[2][0].message
    assert by_camera[2][1] == Ended(2)


def test_close_stops_a_camera_waiting_on_a_full_queue_and_leaves_the_callers_stop_alone():
    stop = threading.Event()
    threads = CameraThreads(stop, queue_size=1)
    threads.start(0, "cam0", lambda ch: ch.run(lambda: _FakePipeline("cam0", 1000)))
    next(threads.events(timeout=2.0))  # the camera runs, then fills the queue and waits
    threads.close(timeout_s=5.0)
    assert not [t for t in threading.enumerate() if t.name == "camera-cam0" and t.is_alive()]
    assert not stop.is_set() and threads.running == 0


def test_stopping_the_engine_ends_every_camera_with_its_last_events():
    stop = threading.Event()
    gate = threading.Event()
    threads = CameraThreads(stop)
    for i in range(2):
        threads.start(
            i, f"cam{i}", lambda ch, i=i: ch.run(lambda: _FakePipeline(f"cam{i}", 1000, gate), flush_on_stop=True)
        )
    first = next(threads.events(timeout=2.0))
    stop.set()
    gate.set()
    events = [first] + _all_events(threads)
    assert sorted(e.camera for e in events if isinstance(e, Ended)) == [0, 1]
    # a camera stopped before its source's end is never reported as analysed (ingest would mark the video
    # complete; it must stay unfinished and be redone)
    assert all(isinstance(e, (Observed, Ended)) for e in events)


def test_the_selected_crops_of_every_camera_are_encoded_in_one_call_and_given_back_per_camera():
    encoder = _CountingEncoder()
    batches = [
        [_observation("a", 1, True), _observation("a", 2, False), _observation("a", 3, True)],
        [_observation("b", 4, False)],
        [_observation("c", 5, True)],
    ]
    vectors, seconds = encode_batches(encoder, batches)
    assert encoder.calls == 1 and seconds >= 0
    assert vectors[1] is None
    assert [int(np.argmax(v)) for v in vectors[0]] == [1, 3] and vectors[0].dtype == np.float32
    assert [int(np.argmax(v)) for v in vectors[2]] == [5]


def test_nothing_selected_costs_no_encoder_call():
    encoder = _CountingEncoder()
    assert encode_batches(encoder, [[_observation("a", 1, False)], []]) == ([None, None], 0.0)
    assert encoder.calls == 0


@pytest.mark.parametrize("unexpected", [False, True])
def test_a_failure_is_reported_once_and_the_thread_still_ends(unexpected):
    threads = CameraThreads(threading.Event())

    def work(channel):
        if unexpected:
            raise KeyError("outside run")  # escapes work: the engine reports it
        channel.run(lambda: (_ for _ in ()).throw(InputVideoError("gone")))

    threads.start(0, "cam0", work)
    events = _all_events(threads)
    threads.close()
    failures = [e for e in events if isinstance(e, Failed)]
    assert len(failures) == 1 and failures[0].unexpected is unexpected and events[-1] == Ended(0)
