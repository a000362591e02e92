"""Live streams as frame sources (pipelines.live.stream) against a real RTSP server on loopback publishing the lab clips
in a loop: frames at the analysis rate with wall-clock times, an unreachable camera, and credentials that never
reach a message (reconnection after the server dies and comes back: tests/live/test_recording.py)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from common.errors import InputVideoError
from common.redaction import redact_text, redact_url
from pipelines.live.stream import StreamOptions, StreamSource, is_stream


def test_credentials_and_secret_query_values_are_redacted_and_the_rest_kept():
    assert (
        redact_url("rtsp://admin:s3cret@10.0.0.5:554/Streaming/101?token=abc&channel=1")
        == "rtsp://***@10.0.0.5:554/Streaming/101?token=***&channel=1"
    )
    assert redact_url("http://cam.local/video.mjpg?user=bob&pwd=x") == "http://cam.local/video.mjpg?user=***&pwd=***"
    assert redact_url("udp://239.0.0.1:5000") == "udp://239.0.0.1:5000"
    text = redact_text("Server returned 401 Unauthorized for 'rtsp://admin:s3cret@host/x' (retrying)")
    assert "s3cret" not in text and "admin" not in text and "rtsp://***@host/x" in text


def test_streams_are_told_from_files():
    assert all(is_stream(u) for u in ("rtsp://h/x", "RTSP://h/x", "https://h/a.m3u8", "udp://@:5000", "/dev/video0"))
    assert not any(is_stream(u) for u in ("cam0.mp4", "/data/rtsp.mp4", "C:/videos/a.avi"))


def _collect(source: StreamSource, frames: list, **kwargs) -> None:
    for frame in source.frames(**kwargs):
        frames.append((frame.index, frame.time_s, frame.image.shape, float(frame.image.mean())))


@pytest.mark.slow
@pytest.mark.parametrize("transport,seconds", [("tcp", 4), ("udp", 2)])
def test_a_live_camera_gives_frames_at_the_analysis_rate_with_wall_clock_times(rtsp_server, transport, seconds):
    server = rtsp_server(("cam0",))
    before = time.time()
    source = StreamSource(
        server.url("cam0"), analysis_fps=5, max_duration_s=seconds, options=StreamOptions(rtsp_transport=transport)
    )
    frames: list = []
    _collect(source, frames)
    assert 5 * seconds - 3 <= len(frames) <= 5 * seconds + 2, len(frames)  # 5 frames/s
    indices, times = [f[0] for f in frames], np.array([f[1] for f in frames])
    assert indices == sorted(set(indices)) and np.all(np.diff(times) > 0)
    assert 0.15 <= float(np.median(np.diff(times))) <= 0.25  # one every 0.2 s of wall-clock time
    assert all(shape == (728, 1288, 3) for _, _, shape, _ in frames) and frames[-1][3] > 20  # real pictures
    assert before <= source.facts.start_time <= time.time() and source.facts.fps == pytest.approx(10, abs=0.5)
    assert source.frames_skipped >= len(frames) // 2  # a 10 frames/s camera analysed at 5


@pytest.mark.slow
def test_an_unreachable_camera_gives_up_with_a_redacted_error_and_stops_its_thread():
    from tests.conftest import free_port

    source = StreamSource(
        f"rtsp://admin:s3cret@127.0.0.1:{free_port()}/cam0",
        analysis_fps=5,
        options=StreamOptions(open_timeout_s=1, backoff_initial_s=0.2, give_up_after_s=1.5),
    )
    with pytest.raises(InputVideoError) as error:
        list(source.frames())
    assert "s3cret" not in str(error.value) and "admin" not in str(error.value)
    assert "rtsp://***@127.0.0.1" in str(error.value) and "refused" in str(error.value)
    assert source.reconnects >= 2
    assert not [t for t in threading.enumerate() if t.name.startswith("stream-")]


@pytest.mark.slow
def test_a_camera_with_a_password_is_read_and_the_password_never_shown(rtsp_server, caplog):
    server = rtsp_server(("cam1",), user="viewer", password="s3cret")
    source = StreamSource(
        server.url("cam1", "viewer:s3cret@"),
        analysis_fps=5,
        max_duration_s=2,
        options=StreamOptions(give_up_after_s=20),
    )
    frames: list = []
    _collect(source, frames)
    assert len(frames) >= 7 and "s3cret" not in source.name
    wrong = StreamSource(
        server.url("cam1", "viewer:wrong@"), analysis_fps=5, options=StreamOptions(open_timeout_s=2, give_up_after_s=1)
    )
    with pytest.raises(InputVideoError) as error:
        list(wrong.frames())
    assert "wrong" not in str(error.value) and "viewer" not in str(error.value)
    assert "s3cret" not in caplog.text and "wrong@" not in caplog.text


@pytest.mark.slow
def test_a_camera_that_goes_down_for_good_ends_at_its_duration_not_never(rtsp_server):
    server = rtsp_server(("cam0",))
    source = StreamSource(
        server.url("cam0"),
        analysis_fps=5,
        max_duration_s=4,
        options=StreamOptions(read_timeout_s=1, backoff_initial_s=0.2),
    )  # never gives up
    frames = []
    for frame in source.frames():
        frames.append(frame.time_s)
        if len(frames) == 5:
            server.kill()
    assert len(frames) >= 5 and source.reconnects >= 1
    assert time.time() - source.facts.start_time < 4 + 2.5  # ended once the 4 s were over, camera still down
