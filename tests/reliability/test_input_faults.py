"""Damaged and odd inputs made from the shared footage: damaged packets, variable frame rates, special files,
broken re-id models and huge images (issue 12: defects 1, 6, 12 and 13)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from common.errors import InputVideoError, UsageError, WeightsError
from models.encoders import load_encoder
from pipelines.ingest.video import VideoSource, probe_video
from pipelines.matching.search import read_query_image
from tests.reliability.damage import broken_reid_onnx, damage_packets, huge_png, variable_rate_mkv


@pytest.mark.slow
def test_damaged_packets_are_skipped_and_counted_not_the_end_of_the_video(tmp_path, lab_cam0):
    damaged = damage_packets(lab_cam0, tmp_path / "damaged.mp4", [40, 120, 200])
    source = VideoSource(damaged, analysis_fps=5)
    frames = list(source.frames())
    clean = VideoSource(lab_cam0, analysis_fps=5)
    reference = list(clean.frames())
    assert source.frames_lost == 3 and source.frames_decoded == 265
    assert len(frames) >= len(reference) - 3 and frames[-1].time_s > 25.0  # before: 11 frames, then silence
    assert source.warning == "3 damaged frames could not be decoded and were skipped"
    assert clean.frames_lost == 0 and clean.warning is None


@pytest.mark.slow
def test_a_variable_frame_rate_mkv_gets_its_real_rate(tmp_path, lab_cam0):
    vfr = variable_rate_mkv(lab_cam0, tmp_path / "vfr.mkv")
    probe = probe_video(vfr)
    assert probe.variable_rate
    assert probe.frame_count == 40
    assert probe.fps == pytest.approx(40 / probe.duration_s, rel=0.01) and 5 < probe.fps < 8  # not 1000
    source = VideoSource(vfr, analysis_fps=5)
    assert len(list(source.frames())) > 20 and source.warning is None  # no false "may be truncated"
    assert not probe_video(lab_cam0).variable_rate and probe_video(lab_cam0).fps == 10


def test_special_files_are_refused_as_videos_and_images_without_blocking(tmp_path):
    fifo = tmp_path / "camera.mp4"
    os.mkfifo(fifo)
    with pytest.raises(InputVideoError, match="not a regular file"):
        probe_video(fifo)
    with pytest.raises(UsageError, match="not a regular file"):
        read_query_image(fifo)
    with pytest.raises(InputVideoError, match="not a regular file"):
        probe_video("/dev/zero")


@pytest.mark.slow
def test_a_huge_query_image_is_refused_before_it_is_decoded(tmp_path):
    image = huge_png(tmp_path / "huge.png")
    assert image.stat().st_size < 1_000_000
    with pytest.raises(UsageError, match="too large for a person crop"):
        read_query_image(image)
    small = huge_png(tmp_path / "small.png", 40, 100)
    assert read_query_image(small).shape == (100, 40, 3)


@pytest.mark.parametrize(
    "kind,words", [("nan", "NaN or infinite"), ("zeros", "all-zero"), ("huge", "100000x100000 pixel inputs")]
)
def test_broken_reid_models_are_refused_on_load(tmp_path, kind, words):
    model = broken_reid_onnx(tmp_path / f"{kind}.onnx", kind)
    with pytest.raises(WeightsError, match=words) as caught:
        load_encoder(model)
    assert str(model) in str(caught.value)


def test_a_reid_model_with_pooled_4d_output_is_taken_as_n_by_d(tmp_path):
    encoder = load_encoder(broken_reid_onnx(tmp_path / "4d.onnx", "4d"))
    assert encoder.dims == 128
    crops = [np.random.default_rng(i).integers(0, 255, (120, 50, 3), dtype=np.uint8) for i in range(3)]
    out = encoder.encode(crops)
    assert out.shape == (3, 128) and np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
