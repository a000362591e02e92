import numpy as np

from common.types import Detection, Observation
from pipelines.ingest.quality import QualityConfig, crop_quality
from pipelines.ingest.sampling import SamplingConfig, TrackSampler


def _det(box, score=0.9, visible=17, track=1):
    kp = np.zeros((17, 3), np.float32)
    kp[:visible, 2] = 0.9
    return Detection(track, np.array(box, np.float32), score, kp)


def test_quality_gate_rejects_tiny_truncated_and_occluded_people_and_weighs_small_ones_less():
    frame = (640, 480)
    good = crop_quality(_det([100, 100, 160, 300]), *frame)
    assert 0.8 < good <= 1.0
    assert crop_quality(_det([100, 100, 110, 120]), *frame) == 0.0  # 20 px high: too small
    distant = crop_quality(_det([100, 100, 112, 130]), *frame)  # 30 px high: encoded, and counts for little
    assert 0 < distant < 0.25
    assert crop_quality(_det([0, 100, 60, 300]), *frame) == 0.0  # cut by the left border
    assert crop_quality(_det([100, 300, 160, 480]), *frame) == 0.0  # cut by the bottom border
    assert crop_quality(_det([100, 100, 160, 300], visible=4), *frame) == 0.0  # 4/17 keypoints visible
    smaller = crop_quality(_det([100, 100, 140, 180]), *frame)
    assert 0 < smaller < good  # 80 px high scores below 200 px high
    no_pose = Detection(1, np.array([100, 100, 160, 300], np.float32), 0.9, None)
    assert crop_quality(no_pose, *frame) > 0
    assert crop_quality(_det([100, 100, 130, 150]), *frame, QualityConfig(min_height=64)) == 0.0


def _obs(track, t, quality):
    return Observation("cam", int(t * 10), t, _det([0, 0, 10, 10], track=track), quality=quality)


def test_sampler_keeps_the_best_crops_per_window_and_releases_every_observation():
    sampler = TrackSampler(SamplingConfig(crops_per_window=2, window_s=1.0))
    crops_made = []

    def make_crop(obs):
        crops_made.append(obs.time_s)
        return np.zeros((4, 2, 3), np.uint8), np.zeros((4, 4), np.float32)

    qualities = [0.5, 0.9, 0.0, 0.7, 0.6]
    released = []
    for i, q in enumerate(qualities):
        released += sampler.add(_obs(1, i * 0.2, q), make_crop)
    assert released == [] and sampler.buffered == 5
    released += sampler.add(_obs(1, 1.0, 0.4), make_crop)  # opens the next window
    assert len(released) == 5
    assert sorted(o.quality for o in released if o.selected) == [0.7, 0.9]
    assert sampler.buffered == 1
    # a lost track is released once a whole window passed without it
    sampler.add(_obs(2, 1.1, 0.3), make_crop)
    assert sampler.release_stale(now_s=1.5) == []
    stale = sampler.release_stale(now_s=2.2)
    assert {o.detection.track_id for o in stale} == {1, 2}
    assert sampler.buffered == 0 and sampler.release_all() == []


def test_sampler_memory_is_bounded_by_live_tracks_not_video_length():
    sampler = TrackSampler(SamplingConfig(crops_per_window=1, window_s=1.0))
    total = 0
    for frame in range(2000):  # 200 s at 10 fps, 3 people
        for track in range(3):
            total += len(
                sampler.add(
                    _obs(track, frame / 10, 0.5 + 0.1 * track),
                    lambda o: (np.zeros((2, 2, 3), np.uint8), np.zeros((4, 4), np.float32)),
                )
            )
        assert sampler.buffered <= 3 * 10
    total += len(sampler.release_all())
    assert total == 6000


def _crop(obs):
    return np.zeros((4, 2, 3), np.uint8), np.zeros((4, 4), np.float32)


def test_a_track_of_a_second_or_more_with_only_rejected_crops_still_gets_its_best_one_encoded():
    from pipelines.ingest.quality import fallback_quality

    frame = (640, 480)
    cut = _det([0, 100, 40, 220], score=0.8, track=3)  # always cut by the left border: the gate rejects it
    assert crop_quality(cut, *frame) == 0.0 and 0 < fallback_quality(cut) < 1e-3
    assert fallback_quality(_det([0, 100, 10, 120])) == 0.0  # 20 px tall: nothing to encode at all
    sampler = TrackSampler(SamplingConfig(crops_per_window=1, window_s=1.0))
    released = []
    for i in range(8):  # 1.4 s at 5 frames/s, the best-scoring box in the middle
        obs = Observation("cam", i, i * 0.2, _det([0, 100, 40, 220], score=0.9 if i == 2 else 0.5, track=3))
        obs.fallback = fallback_quality(obs.detection)
        released += sampler.add(obs, _crop)
    released += sampler.release_all()
    chosen = [o for o in released if o.selected]
    assert [o.frame_index for o in chosen] == [2] and chosen[0].quality == chosen[0].fallback > 0
    # a track seen for under a second, or one that shows an accepted crop, encodes no rejected crop
    brief = TrackSampler()
    for i in range(3):
        obs = Observation("cam", i, i * 0.2, _det([0, 100, 40, 220], track=4))
        obs.fallback = fallback_quality(obs.detection)
        brief.add(obs, _crop)
    assert not any(o.selected for o in brief.release_all())
    mixed, released = TrackSampler(), []
    for i, quality in enumerate([0.0, 0.4, 0.0, 0.0, 0.0, 0.0, 0.0]):
        obs = Observation("cam", i, i * 0.2, _det([0, 100, 40, 220], track=5), quality=quality)
        obs.fallback = 0.0 if quality else fallback_quality(obs.detection)
        released += mixed.add(obs, _crop)
    released += mixed.release_all()
    assert len(released) == 7 and [o.quality for o in released if o.selected] == [0.4]
