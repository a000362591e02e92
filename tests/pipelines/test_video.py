import numpy as np
import pytest

from common.errors import InputVideoError
from pipelines.ingest.video import VideoSource, fingerprint, probe_video
from tests.factories import make_truncated_streamable_copy, make_zero_frame_video


def test_probe_reads_the_real_lab_clip(lab_cam0):
    probe = probe_video(lab_cam0)
    assert (probe.width, probe.height) == (1288, 728)
    assert probe.fps == pytest.approx(10.0)
    assert probe.frame_count == 268
    assert probe.duration_s == pytest.approx(26.8, abs=0.2)


def test_frames_come_at_the_analysis_rate_with_real_timestamps(lab_cam0):
    source = VideoSource(lab_cam0, analysis_fps=4, max_duration_s=3)
    frames = list(source.frames())
    times = np.array([f.time_s for f in frames])
    assert frames[0].image.shape == (728, 1288, 3) and frames[0].image.dtype == np.uint8
    assert times[0] == 0.0 and times[-1] < 3.0
    assert np.all(np.diff(times) >= 0.199) and np.all(np.diff(times) <= 0.31)  # 4/s from a 10/s video
    assert [f.index for f in frames][:3] == [0, 3, 5]
    assert source.expected_frames == len(frames) == 12
    assert source.warning is None


def test_analysis_rate_is_capped_at_the_video_rate(lab_cam0):
    source = VideoSource(lab_cam0, analysis_fps=50, max_duration_s=1)
    assert source.analysis_fps == pytest.approx(10.0)
    assert len(list(source.frames())) == 10
    with pytest.raises(ValueError):
        VideoSource(lab_cam0, analysis_fps=0)


def test_fingerprint_depends_on_content_not_path(lab_cam0, tmp_path):
    copy = tmp_path / "renamed.mp4"
    copy.write_bytes(lab_cam0.read_bytes())
    assert fingerprint(copy) == fingerprint(lab_cam0)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    assert fingerprint(copy) != fingerprint(lab_cam0)


def test_missing_directory_empty_and_non_video_inputs(tmp_path):
    with pytest.raises(InputVideoError, match="does not exist"):
        probe_video(tmp_path / "nope.mp4")
    with pytest.raises(InputVideoError, match="is a directory"):
        probe_video(tmp_path)
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(InputVideoError, match="empty"):
        probe_video(empty)
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 100)
    with pytest.raises(InputVideoError, match="not a readable video"):
        probe_video(text)


def test_zero_frame_video(tmp_path):
    with pytest.raises(InputVideoError, match=r"zero\.mp4"):
        probe_video(make_zero_frame_video(tmp_path / "zero.mp4"))


def test_truncated_real_clip_is_refused_or_decoded_with_a_warning(lab_cam0, tmp_path):
    half = tmp_path / "half.mp4"
    data = lab_cam0.read_bytes()
    half.write_bytes(data[: len(data) // 2])
    try:
        source = VideoSource(half, analysis_fps=5)
    except InputVideoError as exc:
        assert "half.mp4" in str(exc) and "truncated" in str(exc)
        return
    frames = list(source.frames())
    assert len(frames) < 134 and source.warning and "truncated" in source.warning


@pytest.mark.slow
def test_truncated_streamable_clip_yields_its_decodable_half_with_a_warning(lab_cam0, tmp_path):
    source = VideoSource(make_truncated_streamable_copy(lab_cam0, tmp_path / "cut.mp4"), analysis_fps=5)
    frames = list(source.frames())
    assert 30 < len(frames) < 100
    assert "truncated" in source.warning and "268" in source.warning


def test_avi_with_packet_order_times_gets_monotonic_timestamps():
    from tests.conftest import VIDEOS, _require

    pets = _require(VIDEOS / "pets2009_s2l1_view001.avi")
    source = VideoSource(pets, analysis_fps=5, max_duration_s=10)
    assert not source.probe.timestamps_reliable
    frames = list(source.frames())
    assert len(frames) == 50
    np.testing.assert_allclose([f.time_s for f in frames], [f.index / 10.0 for f in frames])
    assert [f.index for f in frames[:4]] == [0, 2, 4, 6]


@pytest.mark.slow
def test_frame_reader_gives_the_same_frames_in_order_after_seeks_and_backwards(lab_cam0):
    from pipelines.ingest.video import FrameReader

    reference = {f.index: f.image for f in VideoSource(lab_cam0, analysis_fps=1000, max_duration_s=10).frames()}
    reader = FrameReader(lab_cam0)
    try:
        for index in [0, 1, 2, 20, 21, 90, 5, 89, 90]:  # in order, a short skip, a seek, backwards
            image = reader.read(index)
            assert image is not None and image.shape == reference[index].shape
            # PyAV and OpenCV decode the same stream; allow for colour-conversion rounding
            assert np.abs(image.astype(int) - reference[index].astype(int)).mean() < 2.0, index
        assert reader.read(10**7) is None
    finally:
        reader.close()


def test_frame_reader_refuses_a_missing_video(tmp_path):
    from pipelines.ingest.video import FrameReader

    with pytest.raises(InputVideoError, match="moved or deleted"):
        FrameReader(tmp_path / "gone.mp4")
