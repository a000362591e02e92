"""Recording a live camera (pipelines.live.recording) while it is analysed: rolling MP4 segments remuxed from the real
RTSP stream, each playable on its own, holding exactly the frames that were analysed at the times they say."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from pipelines.live.recording import SegmentRecorder
from pipelines.live.stream import StreamSource

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
    rtsp_server, short_gop_clip, tmp_path
):
    import threading
    import time

    from pipelines.live.stream import StreamOptions

    server = rtsp_server((), files={"gate": short_gop_clip})
    recorder = SegmentRecorder(tmp_path / "rec", "gate", segment_s=60.0)
    source = StreamSource(
        server.url("gate"),
        analysis_fps=5,
        max_duration_s=7,
        recorder=recorder,
        options=StreamOptions(read_timeout_s=2, backoff_initial_s=0.2, backoff_max_s=1),
    )
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
    from pipelines.ingest.video import FrameReader

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


def _two_sizes_ts(out) -> Path:
    """An MPEG-TS stream that changes picture size mid-way (as a camera switched from main to sub stream does):
    3 s at 320x240 then 3 s at 160x120, keyframe every second, 10 frames/s (two encodes joined byte for byte)."""
    from fractions import Fraction

    parts = []
    for n, (w, h) in enumerate([(320, 240), (160, 120)]):
        part = out.with_name(f"part{n}.ts")
        with av.open(str(part), "w", format="mpegts") as container:
            stream = container.add_stream("libx264", rate=10)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.options = {"g": "10", "bf": "0", "preset": "ultrafast"}
            for i in range(30):
                image = np.full((h, w, 3), (i * 8) % 255, np.uint8)
                frame = av.VideoFrame.from_ndarray(image, format="bgr24")
                frame.pts, frame.time_base = 30 * n + i, Fraction(1, 10)  # the camera's clock runs on
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        parts.append(part.read_bytes())
    out.write_bytes(b"".join(parts))
    return out


def test_a_stream_that_changes_picture_size_starts_a_new_segment_of_that_size(tmp_path):
    from pipelines.live.stream import StreamOptions

    recorder = SegmentRecorder(tmp_path / "rec", "cam", segment_s=60.0)
    once = StreamOptions(backoff_initial_s=60.0, give_up_after_s=None)  # a file: read it once, never reopened
    source = StreamSource(str(_two_sizes_ts(tmp_path / "two.ts")), analysis_fps=1000.0, recorder=recorder, options=once)
    analysed = [f for f in source.frames(lambda: source.last_error == "the stream ended") if f.recorded is not None]
    assert len(recorder.segments) == 2 and (source.facts.width, source.facts.height) == (160, 120)
    sizes = {}
    for segment in recorder.segments:
        with av.open(str(segment.path)) as container:
            frames = list(container.decode(container.streams.video[0]))
        sizes[str(segment.path)] = {(f.width, f.height) for f in frames}
    first, second = recorder.segments
    assert (first.width, first.height, second.width, second.height) == (320, 240, 160, 120)
    assert sizes[str(second.path)] == {(160, 120)} and (320, 240) in sizes[str(first.path)]
    by_path = {str(s.path): s for s in recorder.segments}
    # the consumer takes the newest decoded frame, and a file decodes faster than it reads: which segments it
    # happens to sample varies from run to run, so only where each sampled frame went is checked
    assert analysed and {f.recorded[0] for f in analysed} <= set(by_path)
    for frame in analysed:  # every analysed frame is stored against a segment of its own size
        segment = by_path[frame.recorded[0]]
        assert (frame.image.shape[1], frame.image.shape[0]) == (segment.width, segment.height)


def test_a_full_recording_disk_stops_that_camera_with_one_message_and_leaves_no_empty_segment(short_gop_clip, tmp_path):
    import subprocess

    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(folder)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip() or 'not root'})")
    try:
        from pipelines.live.stream import StreamOptions

        recorder = SegmentRecorder(folder / "rec", "cam", segment_s=1.0)
        source = StreamSource(
            str(short_gop_clip),
            analysis_fps=1000.0,
            recorder=recorder,
            options=StreamOptions(backoff_initial_s=60.0, give_up_after_s=None),
        )
        frames = list(source.frames())
        assert source.stopped_because and "disk of" in source.stopped_because and "is full" in source.stopped_because
        assert source.reconnects == 0 and frames  # stopped once, not reconnecting into new empty files
        files = list((folder / "rec").glob("*.mp4"))
        assert files and all(p.stat().st_size > 0 for p in files)
        assert {str(s.path) for s in recorder.segments} == {str(p) for p in files}
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
