"""The tracking metrics wrapper (TrackEval underneath) on a 3-frame example checked by hand, and the
MOTChallenge ground-truth reader on the shared PETS file."""

from pathlib import Path

import pytest

from pipelines.ingest.mot_eval import box_iou, read_mot_ground_truth, score_tracking

MOT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mot"


def test_three_frames_scored_as_by_hand():
    """Two people A and B. The tracker follows both for two frames, then gives A the id it gave B (one ID switch),
    misses B (one miss) and boxes empty ground (one false positive): 6 true boxes, 6 tracker boxes, 5 matched.
    MOTA = 1 - (1 + 1 + 1) / 6 = 50; IDF1 = 2 * 4 / (6 + 6) = 66.7 (A-1 and B-2 agree on two frames each);
    recall = precision = 5 / 6."""
    a, b, empty = (0, 0, 10, 30), (50, 0, 60, 30), (200, 200, 210, 230)
    truth = {f: [(1, a), (2, b)] for f in range(3)}
    tracker = {0: [(1, a), (2, b)], 1: [(1, a), (2, b)], 2: [(2, a), (3, empty)]}
    scores = score_tracking(truth, tracker, [0, 1, 2])
    assert scores["MOTA"] == pytest.approx(50.0) and scores["IDF1"] == pytest.approx(200 / 3)
    assert scores["IDSW"] == 1 and scores["recall"] == pytest.approx(500 / 6)
    assert scores["precision"] == pytest.approx(500 / 6) and 0 < scores["HOTA"] < 100
    perfect = score_tracking(truth, truth, [0, 1, 2])
    assert perfect["MOTA"] == perfect["IDF1"] == perfect["HOTA"] == pytest.approx(100.0)


def test_iou_and_the_ground_truth_reader():
    assert box_iou([[0, 0, 10, 10]], [[5, 0, 15, 10], [20, 20, 30, 30]]).tolist() == [[1 / 3, 0.0]]
    path = MOT / "PETS09-S2L1" / "gt.txt"
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared/data/mot)")
    truth = read_mot_ground_truth(path, scale=0.625)
    assert min(truth) == 0 and max(truth) == 794
    assert len({oid for boxes in truth.values() for oid, _ in boxes}) == 19
    assert all(
        0 <= b[0] < b[2] <= 480 * 1.05 and 0 <= b[1] < b[3] <= 360 * 1.05 for boxes in truth.values() for _, b in boxes
    )
