import numpy as np

from models.parts import FALLBACK_STRIPES, part_boxes_from_keypoints, stripe_boxes


def _standing_person(h=256.0, w=100.0):
    """COCO-17 keypoints of an upright person filling a 100x256 crop."""
    kp = np.zeros((17, 3), np.float32)
    ys = {0: 20, 1: 16, 2: 16, 3: 18, 4: 18, 5: 50, 6: 50, 7: 85, 8: 85, 9: 115, 10: 115,
          11: 125, 12: 125, 13: 180, 14: 180, 15: 240, 16: 240}
    for i, y in ys.items():
        kp[i] = (35 if i % 2 else 65, y, 0.9)
    kp[0, 0] = 50
    return kp


def test_pose_guided_parts_follow_the_body_top_to_bottom():
    boxes, from_pose = part_boxes_from_keypoints(_standing_person(), 256, 100)
    assert boxes.shape == (4, 4) and boxes.dtype == np.float32
    assert from_pose.all()
    tops, bottoms = boxes[:, 1], boxes[:, 3]
    assert np.all(np.diff(tops) > 0) and np.all(np.diff(bottoms) > 0)
    assert tops[0] == 0 and bottoms[0] > 50  # head+shoulder reaches below the shoulders
    assert tops[1] < 50 < bottoms[1] and tops[1] < 125 < bottoms[1]  # upper body spans shoulders..hips
    assert tops[2] < 125 and bottoms[2] > 180  # upper leg spans hips..knees
    assert tops[3] < 180 and bottoms[3] >= 240  # lower leg from knees down past the ankles
    assert np.all(boxes[:, [0, 1]] >= 0) and np.all(boxes[:, 2] <= 100) and np.all(boxes[:, 3] <= 256)


def test_missing_keypoints_fall_back_to_fixed_stripes():
    boxes, from_pose = part_boxes_from_keypoints(None, 200, 80)
    np.testing.assert_allclose(boxes, stripe_boxes(200, 80))
    assert not from_pose.any()
    np.testing.assert_allclose(boxes[:, 1] / 200, FALLBACK_STRIPES[:, 0])


def test_weak_leg_keypoints_use_the_fallback_only_for_the_legs():
    kp = _standing_person()
    kp[13:, 2] = 0.05  # knees and ankles occluded
    boxes, from_pose = part_boxes_from_keypoints(kp, 256, 100)
    assert from_pose.tolist() == [True, True, False, False]
    np.testing.assert_allclose(boxes[2:], stripe_boxes(256, 100)[2:])
