"""Pose at most once per interval per track; in between the keypoints follow the box."""

import numpy as np

from common.types import Detection, Frame
from models.pose import PoseEstimator
from pipelines.ingest.camera import CameraPipeline, follow_box
from pipelines.ingest.quality import QualityConfig


def test_keypoints_keep_their_place_in_a_moved_and_scaled_box():
    keypoints = np.array([[15, 20, 0.9], [10, 60, 0.4]] + [[12, 40, 0.5]] * 15, np.float32)
    moved = follow_box(keypoints, np.array([10, 20, 20, 60], np.float32), np.array([110, 40, 130, 120], np.float32))
    np.testing.assert_allclose(moved[0], [120, 40, 0.9])  # centre top stays centre top
    np.testing.assert_allclose(moved[1], [110, 120, 0.4])  # bottom left corner stays there


class _CountingPose(PoseEstimator):
    def __init__(self):
        self.people = 0

    def estimate(self, image, detections):
        for det in detections:
            self.people += 1
            det.keypoints = np.tile(np.array([[det.box[0], det.box[1], 1.0]], np.float32), (17, 1))


def test_a_tracked_person_gets_a_pose_once_per_interval_and_keypoints_every_frame():
    pipeline = _pose_step()
    image = np.zeros((200, 200, 3), np.uint8)
    for step in range(10):  # 2 s at 5 analysed frames/s, the person walking right
        det = Detection(track_id=1, box=np.array([step + 10, 10, step + 40, 90], np.float32), score=0.9)
        pipeline._estimate_pose(Frame(image=image, index=step * 2, time_s=step * 0.2), [det], moved=True)
        assert det.keypoints is not None and det.keypoints[0, 0] == step + 10  # follows the box
    assert pipeline.pose.people == 5  # t = 0, 0.4, 0.8, 1.2, 1.6


def _pose_step() -> CameraPipeline:
    pipeline = CameraPipeline.__new__(CameraPipeline)  # only the pose step, without a video
    pipeline.pose, pipeline.pose_interval_s, pipeline._last_pose = _CountingPose(), 0.4, {}
    pipeline.quality = QualityConfig()  # min height 64 px, border margin 2 px
    return pipeline


def test_people_the_quality_gate_rejects_by_size_or_border_get_no_pose_until_they_can_pass():
    pipeline = _pose_step()
    image = np.zeros((200, 300, 3), np.uint8)
    distant = Detection(track_id=1, box=np.array([50, 50, 65, 90], np.float32), score=0.9)  # 40 px tall
    cut = Detection(track_id=2, box=np.array([0, 20, 40, 120], np.float32), score=0.9)  # at the left border
    near = Detection(track_id=3, box=np.array([150, 20, 190, 120], np.float32), score=0.9)
    pipeline._estimate_pose(Frame(image=image, index=0, time_s=0.0), [distant, cut, near], moved=True)
    assert pipeline.pose.people == 1 and near.keypoints is not None
    assert distant.keypoints is None and cut.keypoints is None
    closer = Detection(track_id=1, box=np.array([50, 40, 80, 120], np.float32), score=0.9)  # now 80 px tall
    pipeline._estimate_pose(Frame(image=image, index=2, time_s=0.2), [closer], moved=True)
    assert pipeline.pose.people == 2 and closer.keypoints is not None  # at once, not after the interval
