"""Recording a live camera (pipelines.recording) while it is analysed: rolling MP4 segments remuxed from the real
RTSP stream, each playable on its own, holding exactly the frames that were analysed at the times they say."""

from __future__ import annotations

import av
import numpy as np
import pytest

from pipelines.recording import SegmentRecorder
from pipelines.stream import StreamSource

pytestmark = pytest.mark.slow


def _decoded(path) -> list[tuple[float, np.ndarray]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [(float(f.time), f.to_ndarray(format="bgr24")) for f in container.decode(stream)]


def test_segments_play_back_the_analysed_frames_at_their_recorded_times(rtsp_server, short_gop_clip, tmp_path):
    server = rtsp_server((), files={"gate": short_gop_clip})
    finished = []
    recorder = SegmentRecorder(tmp_path / "rec", "gate camera", segment_s=2.0, on_segment=finished.append)
    source = StreamSource(server.url("gate"), analysis_fps=5, max_duration_s=7, recorder=recorder)
    analysed = list(source.frames())
    assert len(finished) == len(recorder.segments) >= 3  # every segment closed once the stream ended
    assert all(s.path.parent == tmp_path / "rec" and s.path.name.startswith("gate_camera-") for s in finished)
    for segment in finished[:-1]:
        frames = _decoded(segment.path)
        assert 1.8 <= segment.duration_s <= 3.2 and abs(len(frames) - 10 * (segment.duration_s + 0.1)) <= 2
    starts = [s.start_time for s in finished]
    assert starts == sorted(starts) and starts[0] >= source.facts.start_time
    recorded = [f for f in analysed if f.recorded is not None]
    assert len(recorded) >= len(analysed) - 6  # only frames before the first keyframe are not recorded
    checked = 0
    for frame in recorded[::3]:
        path, seconds = frame.recorded
        playback = _decoded(path)
        at, image = min(playback, key=lambda p: abs(p[0] - seconds))
        assert abs(at - seconds) < 1e-3  # the frame is in the file at the time the sighting will carry
        assert np.array_equal(image, frame.image)  # the same picture, bit for bit: remuxed, not re-encoded
        checked += 1
    assert checked >= 8


def test_a_killed_and_restarted_server_is_reconnected_into_a_new_segment_without_duplicates_or_going_back(
        rtsp_server, short_gop_clip, tmp_path):
    import threading
    import time

    from pipelines.stream import StreamOptions

    server = rtsp_server((), files={"gate": short_gop_clip})
    recorder = SegmentRecorder(tmp_path / "rec", "gate", segment_s=60.0)
    source = StreamSource(server.url("gate"), analysis_fps=5, max_duration_s=7, recorder=recorder,
                          options=StreamOptions(read_timeout_s=2, backoff_initial_s=0.2, backoff_max_s=1))
    analysed: list = []
    reader = threading.Thread(target=lambda: analysed.extend(source.frames()))
    reader.start()
    time.sleep(3)
    server.kill()
    killed_at = len(analysed)
    time.sleep(1.5)
    server.start()
    reader.join(60)
    assert not reader.is_alive() and source.reconnects >= 1
    times = np.array([f.time_s for f in analysed])
    assert killed_at >= 5 and len(analysed) > killed_at + 5  # it came back and went on
    assert np.all(np.diff(times) > 0) and np.all(np.diff([f.index for f in analysed]) > 0)
    assert np.diff(times).max() >= 1.5  # the outage is a gap in wall-clock time, not rewound
    assert len(recorder.segments) == 2  # one per connection, not one per minute
    first, second = recorder.segments
    assert first.connection != second.connection and second.start_time >= first.start_time + first.duration_s
    for segment in recorder.segments:
        times = [t for t, _ in _decoded(segment.path)]
        assert len(times) == segment.packets and np.all(np.diff(times) > 0)
    assert {f.recorded[0] for f in analysed if f.recorded} == {str(first.path), str(second.path)}


def test_the_segment_being_written_already_plays_back_its_analysed_frames(rtsp_server, short_gop_clip, tmp_path):
    from pipelines.video import FrameReader

    server = rtsp_server((), files={"gate": short_gop_clip})
    recorder = SegmentRecorder(tmp_path / "rec", "gate", segment_s=60.0)
    source = StreamSource(server.url("gate"), analysis_fps=5, max_duration_s=30, recorder=recorder)
    frames = source.frames()
    analysed = []
    try:
        for frame in frames:
            if frame.recorded is not None:
                analysed.append(frame)
            if len(analysed) == 20:  # about 4 s in: the segment is open and growing
                break
        assert recorder.current is not None and len(recorder.segments) == 1
        reader = FrameReader(recorder.current.path)
        try:
            for frame in analysed[:12]:  # at least one keyframe (one fragment) behind the newest frame
                path, seconds = frame.recorded
                image = reader.read(int(round(seconds * 10)))
                assert image is not None and np.array_equal(image, frame.image)
        finally:
            reader.close()
    finally:
        frames.close()
    assert len(_decoded(recorder.segments[0].path)) >= 40  # and the closed file holds all of it
