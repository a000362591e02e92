"""Motion gating: still frames skip detection (their people are tracked on from the last detection); nothing that
moves is missed."""

import numpy as np
import pytest

from pipelines.ingest.motion import MotionGate, MotionGateConfig


def _scene(person_x=None, noise_seed=0):
    rng = np.random.default_rng(noise_seed)
    image = np.full((360, 480, 3), 120, np.uint8)
    image[200:, :] = 80  # the ground
    image = np.clip(image.astype(np.int16) + rng.integers(-3, 4, image.shape), 0, 255).astype(np.uint8)
    if person_x is not None:
        image[150:195, person_x : person_x + 15] = (30, 40, 200)  # a distant person, 15 x 45 px
    return image


def test_still_frames_are_skipped_and_a_small_person_entering_is_detected():
    gate = MotionGate()
    assert gate.should_detect(_scene())  # the first frame is always detected
    assert not any(gate.should_detect(_scene(noise_seed=i)) for i in range(1, 6))
    assert gate.skipped == 5
    assert gate.should_detect(_scene(person_x=10, noise_seed=7))


def test_a_standing_person_is_skipped_and_slow_motion_accumulates_until_seen():
    gate = MotionGate()
    gate.should_detect(_scene(person_x=100))
    assert not any(gate.should_detect(_scene(person_x=100, noise_seed=i)) for i in range(1, 4))
    # a person creeping 1 px per frame: seen once the change since the last detection adds up
    decisions = [gate.should_detect(_scene(person_x=100 + step)) for step in range(1, 15)]
    assert not decisions[0] and any(decisions)


def test_disabled_gate_detects_everything():
    gate = MotionGate(MotionGateConfig(enabled=False))
    assert all(gate.should_detect(_scene()) for _ in range(4)) and gate.skipped == 0


@pytest.fixture(scope="module")
def encoder_onnx():
    from models.encoders import load_encoder
    from tests.conftest import OSNET, _require

    return load_encoder(_require(OSNET))


def _tracks(db):
    from sqlalchemy import select

    from storage.schema import Sighting

    with db.session() as session:
        rows = session.execute(
            select(
                Sighting.track_id,
                Sighting.video_id,
                Sighting.frame_index,
                Sighting.x1,
                Sighting.y1,
                Sighting.x2,
                Sighting.y2,
            )
        ).all()
    tracks = {}  # track -> {(video, frame): box}
    for track, video, frame, *box in rows:
        tracks.setdefault(track, {})[(video, frame)] = np.array(box)
    return tracks


def _iou(a, b) -> float:
    """IoU of two xyxy boxes (torchvision's ``box_iou``)."""
    import torch
    from torchvision.ops import box_iou

    return float(
        box_iou(
            torch.as_tensor(np.array([a]), dtype=torch.float32), torch.as_tensor(np.array([b]), dtype=torch.float32)
        )[0, 0]
    )


def _found_fraction(track, others) -> float:
    """Fraction of a track's sightings that the other run also has (a sighting in that frame with IoU >= 0.5),
    whatever track ids the other run gave them."""
    by_frame = {}
    for other in others.values():
        for frame, box in other.items():
            by_frame.setdefault(frame, []).append(box)
    found = sum(any(_iou(box, b) >= 0.5 for b in by_frame.get(frame, [])) for frame, box in track.items())
    return found / len(track)


def _moves(track) -> bool:
    """True unless the track's box centre stayed within ``StaticTrackConfig.max_motion`` box heights (a motionless
    false positive such as the lab's empty chair, which a detector finds in some frames and not in others)."""
    from pipelines.ingest.quality import StaticTrackConfig

    boxes = np.stack(list(track.values()))
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    height = float(np.mean(boxes[:, 3] - boxes[:, 1]))
    return float(np.ptp(centres, axis=0).max()) >= StaticTrackConfig.max_motion * height


@pytest.mark.slow
@pytest.mark.parametrize("clip", ["static", "lab"])
def test_gating_keeps_every_track_of_the_ungated_run(tmp_path, encoder_onnx, clip):
    from benchmarks.peer import static_clip
    from models.detection import BatchingDetector, PersonDetector
    from models.pose import NoPose
    from models.tracking import PersonTracker
    from pipelines.ingest.files import IngestJob, IngestOptions, ingest
    from pipelines.ingest.quality import DuplicateConfig
    from storage.database import open_database
    from tests.conftest import LAB, PLAIN_DETECTOR, _require

    videos = (
        [static_clip(tmp_path / "static.mp4", quiet_s=10, busy_s=10)]
        if clip == "static"
        else [_require(LAB / "cam0.mp4"), _require(LAB / "cam1.mp4")]
    )
    shared = BatchingDetector(PersonDetector(_require(PLAIN_DETECTOR)))
    runs = {}
    for gated in (False, True):
        db = open_database(tmp_path / f"{clip}-{gated}.db")
        # duplicate-box suppression off: which of two boxes of one person goes depends on track ages, which
        # gating shifts by a frame; this compares the tracks gating keeps, not that choice
        options = IngestOptions(
            analysis_fps=5,
            max_duration_s=None if clip == "static" else 12,
            motion=MotionGateConfig(enabled=gated),
            duplicates=DuplicateConfig(min_iou=1.01),
        )
        summaries = ingest(
            db,
            [IngestJob(v, f"c{i}") for i, v in enumerate(videos)],
            encoder_onnx,
            lambda: PersonTracker(detector=shared),
            lambda t: NoPose(),
            options,
        )
        assert all(s.status == "done" for s in summaries)
        runs[gated] = (_tracks(db), sum(s.frames_skipped for s in summaries), sum(s.frames_analysed for s in summaries))
        db.close()
    ungated, gated = runs[False][0], runs[True][0]
    real = {t: boxes for t, boxes in ungated.items() if len(boxes) >= 3 and _moves(boxes)}
    found = {t: _found_fraction(track, gated) for t, track in real.items()}
    assert real and min(found.values()) >= 0.9, found
    skipped, analysed = runs[True][1], runs[True][2]
    assert runs[False][1] == 0
    if clip == "static":
        assert skipped >= 0.35 * analysed  # the empty stretches (20 of the 30 s) skip detection
