import numpy as np
import pytest

from common.errors import WeightsError
from models.detection import load_yolo
from models.pose import MMPoseEstimator, YoloTopDownPose
from models.tracking import PersonTracker
from pipelines.ingest.video import VideoSource


@pytest.mark.slow
def test_real_pose_detector_tracks_people_with_stable_ids_and_keypoints(pose_detector, lab_cam1):
    tracker = PersonTracker(pose_detector)
    assert tracker.gives_keypoints
    ids_per_frame = []
    for frame in VideoSource(lab_cam1, analysis_fps=10, max_duration_s=1.5).frames():
        dets = tracker.update(frame.image)
        ids_per_frame.append({d.track_id for d in dets})
        for d in dets:
            assert d.box.shape == (4,) and d.box[2] > d.box[0] and d.box[3] > d.box[1]
            assert d.keypoints.shape == (17, 3) and 0 <= d.score <= 1
    assert len(ids_per_frame) == 15
    assert max(len(s) for s in ids_per_frame) >= 2  # the lab has 2-3 people
    assert ids_per_frame[-1] & ids_per_frame[5]  # ids persist across frames


@pytest.mark.slow
def test_top_down_yolo_pose_fills_keypoints_inside_the_box(pose_detector, lab_cam1):
    frame = next(VideoSource(lab_cam1, analysis_fps=1).frames())
    tracker = PersonTracker(pose_detector)
    dets = tracker.update(frame.image)
    assert dets
    for d in dets:
        d.keypoints = None
    YoloTopDownPose(pose_detector).estimate(frame.image, dets)
    with_kp = [d for d in dets if d.keypoints is not None]
    assert with_kp
    for d in with_kp:
        visible = d.keypoints[d.keypoints[:, 2] > 0.5]
        margin = 0.15 * (d.box[3] - d.box[1])
        assert np.all(visible[:, 1] >= d.box[1] - margin) and np.all(visible[:, 1] <= d.box[3] + margin)


def test_corrupt_detector_weights_give_a_clear_error(tmp_path):
    bad = tmp_path / "yolo-broken.pt"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(WeightsError, match="yolo-broken.pt could not be loaded"):
        load_yolo(bad)


def test_mmpose_backend(tmp_path):
    pytest.importorskip("mmpose.apis", reason="mmpose (with a compiled mmcv) is not installed")
    with pytest.raises(WeightsError):
        MMPoseEstimator(str(tmp_path / "missing_config.py"), str(tmp_path / "missing.pth"))


def test_mmpose_backend_without_mmpose_says_how_to_get_it():
    try:
        import mmpose.apis  # noqa: F401

        pytest.skip("mmpose is installed here; this checks the message when it is not")
    except Exception:
        pass
    with pytest.raises(WeightsError, match="mmpose"):
        MMPoseEstimator("cfg.py", "ckpt.pth")
