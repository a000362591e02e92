from collections import Counter

import numpy as np
import pytest

from models.parts import flip_boxes, part_boxes_from_keypoints
from models.sampler import PKSampler
from models.transforms import TrainTransform, normalise, random_erasing
from tests.models.synthetic import person_image


def _keypoints():
    kp = np.zeros((17, 3), np.float32)
    ys = [14, 12, 12, 13, 13, 30, 30, 48, 48, 62, 62, 72, 72, 98, 98, 122, 122]
    for i, y in enumerate(ys):
        kp[i] = (24 if i % 2 else 40, y, 0.9)
    kp[0, 0] = 32
    kp[[7, 9], 0] = 4  # one arm out: not left/right symmetric
    return kp


def test_flip_mirrors_the_image_and_the_part_boxes_consistently():
    image = person_image(3, 1, np.random.default_rng(0))  # 128x64 BGR
    kp = _keypoints()
    transform = TrainTransform((128, 64), padding=0, erasing_probability=0.0)
    plain, plain_boxes = transform(image, kp, np.random.default_rng(1), flip=False)
    mirrored, mirrored_boxes = transform(image, kp, np.random.default_rng(1), flip=True)
    np.testing.assert_allclose(mirrored, plain[:, :, ::-1], atol=1e-6)
    np.testing.assert_allclose(mirrored_boxes, flip_boxes(plain_boxes, 64), atol=1e-4)
    expected, _ = part_boxes_from_keypoints(kp, 128, 64)
    np.testing.assert_allclose(plain_boxes, expected, atol=1e-4)
    assert plain.shape == (3, 128, 64) and plain.dtype == np.float32


def test_resize_and_pad_crop_move_the_keypoints_with_the_image():
    image = np.zeros((256, 128, 3), np.uint8)  # twice the input size: keypoints must be halved
    kp = _keypoints() * np.array([2, 2, 1], np.float32)
    transform = TrainTransform((128, 64), padding=10, erasing_probability=0.0)
    rng = np.random.default_rng(5)
    _, boxes = transform(image, kp, rng, flip=False)
    dy, dx = np.random.default_rng(5).integers(0, 21, 2)  # the same draws the transform made for its crop
    shifted = _keypoints()
    shifted[:, 0] += 10 - dx
    shifted[:, 1] += 10 - dy
    inside = (shifted[:, 0] >= 0) & (shifted[:, 0] < 64) & (shifted[:, 1] >= 0) & (shifted[:, 1] < 128)
    shifted[~inside, 2] = 0
    np.testing.assert_allclose(boxes, part_boxes_from_keypoints(shifted, 128, 64)[0], atol=1e-3)


def test_without_keypoints_the_parts_are_fixed_stripes_and_stripes_mode_ignores_keypoints():
    image = person_image(1, 1, np.random.default_rng(0))
    _, boxes = TrainTransform((128, 64), padding=0)(image, None, np.random.default_rng(0), flip=False)
    _, stripes = TrainTransform((128, 64), padding=0, part_mode="stripes")(
        image, _keypoints(), np.random.default_rng(0), flip=False
    )
    np.testing.assert_allclose(boxes, stripes)


def test_random_erasing_zeroes_one_rectangle_of_bounded_area():
    image = normalise(np.full((128, 64, 3), 200, np.uint8))
    before = image.copy()
    random_erasing(image, np.random.default_rng(3))
    erased = np.all(image == 0.0, axis=0)
    assert 0.02 * 128 * 64 * 0.8 <= erased.sum() <= 0.4 * 128 * 64 * 1.2
    rows, cols = np.flatnonzero(erased.any(1)), np.flatnonzero(erased.any(0))
    assert erased[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()  # one rectangle
    assert np.array_equal(image[:, ~erased], before[:, ~erased])


def test_pk_sampler_gives_p_identities_with_k_images_each():
    labels = [i // 5 for i in range(50)] + [10, 10]  # identities 0-9 with 5 images, identity 10 with 2
    sampler = PKSampler(labels, p=4, k=3, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 11 // 4
    for batch in batches:
        counts = Counter(labels[i] for i in batch)
        assert len(batch) == 12 and len(counts) == 4 and set(counts.values()) == {3}
    seen = {labels[i] for b in batches for i in b}
    assert len(seen) == 8  # each identity at most once per epoch
    assert list(sampler) != batches  # a new order every epoch
    few = [0, 0, 1, 1]  # fewer than K images per identity: drawn with replacement
    assert Counter(few[i] for i in next(iter(PKSampler(few, p=2, k=4)))) == {0: 4, 1: 4}
    with pytest.raises(ValueError, match="only 2"):
        PKSampler([0, 1], p=4, k=2)
    with pytest.raises(ValueError, match="K >= 2"):
        PKSampler([0, 1], p=1, k=1)
