import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest

from common.errors import DatasetError
from models.keypoint_cache import as_optional, cache_path, dataset_keypoints
from models.parts import part_boxes_from_keypoints


def _images(folder, n):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"{i}.jpg"
        cv2.imwrite(str(path), np.full((32, 16, 3), 10 * i, np.uint8))
        paths.append(path)
    return paths


class _CountingPose:
    def __init__(self):
        self.seen = 0

    def __call__(self, crops):
        self.seen += len(crops)
        return [None if crop[0, 0, 0] == 0 else np.full((17, 3), crop[0, 0, 0], np.float32) for crop in crops]


def test_keypoints_are_estimated_once_and_reused(tmp_path):
    paths = _images(tmp_path / "train", 5)
    pose = _CountingPose()
    first = dataset_keypoints(paths, tmp_path, "pose-a", pose, batch_size=2)
    assert first.shape == (5, 17, 3) and pose.seen == 5
    assert np.isnan(first[0]).all() and as_optional(first[0]) is None  # no person found in image 0
    assert first[3, 0, 0] == 30 and as_optional(first[3]).shape == (17, 3)
    assert cache_path(tmp_path, "pose-a").is_file()
    again = dataset_keypoints(paths, tmp_path, "pose-a", pose)
    np.testing.assert_array_equal(np.nan_to_num(again), np.nan_to_num(first))
    assert pose.seen == 5  # nothing re-estimated
    more = paths + _images(tmp_path / "extra", 2)
    dataset_keypoints(more, tmp_path, "pose-a", pose)
    assert pose.seen == 7  # only the new images
    dataset_keypoints(paths[:1], tmp_path, "pose-b", pose)
    assert pose.seen == 8  # another pose model gets its own cache


def test_read_only_dataset_caches_in_the_fallback_folder(tmp_path, monkeypatch):
    root = tmp_path / "dataset"
    paths = _images(root, 2)
    # a read-only dataset folder (simulated: tests may run as root, which ignores permissions)
    monkeypatch.setattr("models.keypoint_cache.os.access", lambda path, mode: Path(path) != root)
    pose = _CountingPose()
    dataset_keypoints(paths, root, "pose", pose, fallback_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("keypoints-*-pose.npz"))) == 1
    assert not (root / ".reid-app").exists()
    dataset_keypoints(paths, root, "pose", pose, fallback_dir=tmp_path / "cache")
    assert pose.seen == 2  # found again in the fallback folder


def test_corrupt_cache_is_recomputed_and_unreadable_images_are_named(tmp_path):
    paths = _images(tmp_path, 2)
    cache = cache_path(tmp_path, "pose")
    cache.parent.mkdir()
    cache.write_bytes(b"not an npz")
    pose = _CountingPose()
    dataset_keypoints(paths, tmp_path, "pose", pose)
    assert pose.seen == 2
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really")
    with pytest.raises(DatasetError, match="broken.jpg"):
        dataset_keypoints([broken], tmp_path, "pose", pose)


@pytest.mark.slow
def test_real_pose_model_gives_pose_guided_parts_for_real_person_crops(tmp_path, lab_db, pose_detector):
    from models.pose import YoloTopDownPose

    con = sqlite3.connect(lab_db)
    rows = con.execute("SELECT thumbnail FROM sightings WHERE thumbnail IS NOT NULL ORDER BY id LIMIT 12").fetchall()
    con.close()
    paths = []
    for i, (blob,) in enumerate(rows):
        path = tmp_path / f"{i}.jpg"
        path.write_bytes(blob)
        paths.append(path)
    estimator = YoloTopDownPose(pose_detector)
    keypoints = dataset_keypoints(paths, tmp_path, "yolov8n-pose", estimator.estimate_crops)
    found = [as_optional(k) for k in keypoints]
    assert sum(k is not None for k in found) >= len(paths) * 2 // 3
    pose_guided = 0
    for path, kp in zip(paths, found):
        image = cv2.imread(str(path))
        if kp is not None:
            assert kp[:, 0].max() <= image.shape[1] * 1.1 and kp[:, 1].max() <= image.shape[0] * 1.1
            pose_guided += part_boxes_from_keypoints(kp, *image.shape[:2])[1].sum()
    assert pose_guided >= 2 * len(paths)  # on average at least half the parts placed from keypoints
