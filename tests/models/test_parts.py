import numpy as np
import pytest

from models.parts import (
    FALLBACK_STRIPES,
    fallback_stripes,
    flip_boxes,
    flip_keypoints,
    part_boxes_from_keypoints,
    stripe_boxes,
)


def _standing_person(h=256.0, w=100.0):
    """COCO-17 keypoints of an upright person filling a 100x256 crop."""
    kp = np.zeros((17, 3), np.float32)
    ys = {
        0: 20,
        1: 16,
        2: 16,
        3: 18,
        4: 18,
        5: 50,
        6: 50,
        7: 85,
        8: 85,
        9: 115,
        10: 115,
        11: 125,
        12: 125,
        13: 180,
        14: 180,
        15: 240,
        16: 240,
    }
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


@pytest.mark.parametrize("num_parts", [2, 4, 6])
def test_flipping_keypoints_flips_the_part_boxes(num_parts):
    kp = _standing_person()
    kp[[7, 9], 0] = 5.0  # raise the left arm sideways: the boxes are no longer symmetric
    boxes, from_pose = part_boxes_from_keypoints(kp, 256, 100, num_parts=num_parts)
    flipped_kp = flip_keypoints(kp, 100)
    assert flipped_kp[5, 0] == 100 - kp[6, 0]  # left shoulder takes the mirrored right shoulder's place
    flipped, flipped_from_pose = part_boxes_from_keypoints(flipped_kp, 256, 100, num_parts=num_parts)
    np.testing.assert_allclose(flipped, flip_boxes(boxes, 100), atol=1e-4)
    assert (flipped_from_pose == from_pose).all() and from_pose.all()
    assert not np.allclose(flipped, boxes)  # the test case is not trivially symmetric


@pytest.mark.parametrize("num_parts", [2, 6])
def test_two_and_six_parts_cover_the_body_top_to_bottom(num_parts):
    boxes, from_pose = part_boxes_from_keypoints(_standing_person(), 256, 100, num_parts=num_parts)
    assert boxes.shape == (num_parts, 4) and from_pose.all()
    assert boxes[0, 1] == 0 and boxes[-1, 3] >= 240
    assert np.all(np.diff(boxes[:, 1]) > 0)
    none_boxes, none_from_pose = part_boxes_from_keypoints(None, 256, 100, num_parts=num_parts)
    np.testing.assert_allclose(none_boxes, stripe_boxes(256, 100, fallback_stripes(num_parts)))
    assert not none_from_pose.any()


def test_missing_keypoints_stay_missing_under_a_flip_and_other_counts_are_refused():
    assert flip_keypoints(None, 100) is None
    with pytest.raises(ValueError, match="parts"):
        part_boxes_from_keypoints(_standing_person(), 256, 100, num_parts=3)
    np.testing.assert_allclose(fallback_stripes(3), [[0, 1 / 3], [1 / 3, 2 / 3], [2 / 3, 1]], rtol=1e-6)
