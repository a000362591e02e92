"""The OpenVINO detection export run at each frame's own aspect (models.native_aspect): the cut head decoded by us
gives Ultralytics' boxes and scores at the export's square size, finds the same people at the native aspect from
fewer pixels, and anything that is not a YOLOv8 detection IR falls back to Ultralytics."""

import numpy as np
import pytest

from benchmarks.recall import iou_matrix
from models.detection import PersonDetector, load_yolo
from models.native_aspect import NativeAspectDetector, letterbox_geometry, load_native_aspect
from pipelines.ingest.video import VideoSource
from tests.conftest import LAB, PLAIN_DETECTOR, POSE_DETECTOR, VIDEOS, WEIGHTS, _require


def _frames(path, count: int, fps: float = 1.0) -> list[np.ndarray]:
    frames = []
    for n, frame in enumerate(VideoSource(_require(path), analysis_fps=fps).frames()):
        frames.append(frame.image)
        if n + 1 == count:
            break
    return frames


def test_input_keeps_the_frame_aspect_rounded_up_to_the_stride():
    assert letterbox_geometry(728, 1288, 640)[:2] == (384, 640)  # lab cameras: 640 x 362 -> 640 x 384
    assert letterbox_geometry(360, 480, 640)[:2] == (480, 640)  # PETS 4:3
    assert letterbox_geometry(1280, 720, 640)[:2] == (640, 384)  # portrait
    assert letterbox_geometry(728, 1288, 640, square=True)[:2] == (640, 640)
    h, w, scale, (nw, nh), (left, top) = letterbox_geometry(728, 1288, 960)
    assert (h, w) == (544, 960) and (nw, nh) == (960, 543) and left == 0 and top == 0
    assert scale == pytest.approx(960 / 1288)


@pytest.mark.slow
@pytest.mark.parametrize(
    "weights,classes,keypoints", [(PLAIN_DETECTOR, 80, 0), (POSE_DETECTOR, 1, 17)], ids=["detect", "pose"]
)
def test_at_the_export_size_boxes_scores_and_keypoints_equal_ultralytics(weights, classes, keypoints):
    weights = _require(weights)
    ultralytics = PersonDetector(weights, native_aspect=False)
    ours = NativeAspectDetector(weights, classes=classes, keypoints=keypoints, square=True)
    frames = _frames(LAB / "cam1.mp4", 3) + _frames(VIDEOS / "pets2009_s2l1_view001.avi", 3, fps=0.5)
    compared = 0
    for image in frames:
        theirs = ultralytics.detect([image])[0]
        xyxy, conf, kpts = ours.detect([image], confidence=0.1)[0]
        assert abs(len(conf) - len(theirs)) <= 1  # NMS may break a near-tie among the faintest boxes differently
        scale = 640 / max(image.shape[:2])
        for box, score in zip(theirs.xyxy, theirs.conf):
            if score < 0.25:
                continue
            best = int(np.argmax(iou_matrix(box[None], xyxy)[0]))
            assert conf[best] == pytest.approx(score, abs=1e-4)
            # the INT8 export quantises its own DFL decode: within 2 input pixels
            np.testing.assert_allclose(xyxy[best] * scale, box * scale, atol=2.0)
            if keypoints:
                mine, their = kpts[best], theirs.keypoints[int(np.argmax(theirs.conf == score))]
                np.testing.assert_allclose(mine[:, :2] * scale, their[:, :2] * scale, atol=1.5)
                np.testing.assert_allclose(mine[:, 2], their[:, 2], atol=1e-3)
            compared += 1
    assert compared >= 12


@pytest.mark.slow
def test_at_the_native_aspect_the_same_people_are_found_from_fewer_pixels():
    weights = _require(PLAIN_DETECTOR)
    square = NativeAspectDetector(weights, square=True)
    native = NativeAspectDetector(weights)
    assert native.input_shape(728, 1288) == (384, 640)
    confident = found = 0
    for image in _frames(LAB / "cam0.mp4", 4) + _frames(LAB / "cam2.mp4", 4):
        reference, _, _ = square.detect([image], confidence=0.5)[0]
        xyxy, _, keypoints = native.detect([image], confidence=0.1)[0]
        assert keypoints is None
        assert (
            np.all(xyxy >= 0)
            and np.all(xyxy[:, [0, 2]] <= image.shape[1])
            and np.all(xyxy[:, [1, 3]] <= image.shape[0])
        )
        confident += len(reference)
        if len(reference) and len(xyxy):
            found += int((iou_matrix(reference, xyxy).max(1) >= 0.7).sum())
    # enough people for the comparison to mean something (11 to 13 over these frames, by OpenVINO release)
    assert confident >= 10 and found >= 0.9 * confident


@pytest.mark.slow
def test_ingest_models_use_the_native_aspect_for_openvino_detection_and_pose_exports():
    assert PersonDetector(_require(PLAIN_DETECTOR)).native.keypoints == 0
    pose = load_yolo(_require(POSE_DETECTOR))
    assert load_native_aspect(POSE_DETECTOR, pose.task, pose.names).keypoints == 17
    reid_ir = _require(WEIGHTS / "person-reidentification-retail-0288")
    assert load_native_aspect(reid_ir, "detect", {0: "person"}) is None  # an IR without a YOLO head
    with pytest.raises(ValueError, match="no YOLOv8 detection head"):
        NativeAspectDetector(reid_ir)
    with pytest.raises(ValueError, match="multiples of 32"):
        PersonDetector(_require(PLAIN_DETECTOR)).native.detect_exact(np.zeros((100, 160, 3), np.uint8))


@pytest.mark.slow
def test_top_down_pose_mosaics_hold_only_the_cells_needed_and_give_ultralytics_keypoints():
    from common.types import Detection
    from models.pose import YoloTopDownPose
    from models.tracking import PersonTracker

    native = YoloTopDownPose(_require(POSE_DETECTOR))
    fixed = YoloTopDownPose(POSE_DETECTOR)
    fixed.native = None  # the same model through Ultralytics' predict on full 640 x 640 mosaics
    assert native._mosaic_grid(1) == (1, 1) and native._mosaic_grid(3) == (4, 1) and native._mosaic_grid(6) == (4, 2)
    assert fixed._mosaic_grid(1) == (4, 2)
    tracker = PersonTracker(_require(PLAIN_DETECTOR))
    compared = 0
    for image in _frames(LAB / "cam1.mp4", 3):
        people = tracker.update(image)
        twins = [Detection(d.track_id, d.box.copy(), d.score) for d in people]
        native.estimate(image, people)
        fixed.estimate(image, twins)
        for mine, theirs in zip(people, twins):
            if mine.keypoints is None or theirs.keypoints is None:
                continue
            height = mine.box[3] - mine.box[1]
            visible = (mine.keypoints[:, 2] > 0.5) & (theirs.keypoints[:, 2] > 0.5)
            # a one-person mosaic gives the network the same cell pixels, but less context around them
            assert (
                np.median(np.linalg.norm(mine.keypoints[visible, :2] - theirs.keypoints[visible, :2], axis=1))
                < 0.03 * height
            )
            compared += 1
    assert compared >= 5


@pytest.mark.slow
def test_ingest_detector_size_reaches_the_runner_and_a_larger_input_keeps_every_confident_person(tmp_path):
    from common.settings import load_settings
    from reid_app.ingest_runner import IngestChoices, prepare_ingest
    from tests.conftest import OSNET

    prepared = prepare_ingest(
        IngestChoices(detector=str(_require(PLAIN_DETECTOR)), reid=str(_require(OSNET)), detector_size=960),
        load_settings(),
    )
    large = prepared.make_tracker().detector.detector
    assert large.native.input_shape(728, 1288) == (544, 960)
    small = PersonDetector(_require(PLAIN_DETECTOR))
    confident = 0
    for image in _frames(LAB / "cam1.mp4", 4) + _frames(LAB / "cam3.mp4", 4):
        theirs, ours = small.detect([image])[0], large.detect([image])[0]
        sure = theirs.xyxy[theirs.conf >= 0.5]
        if len(sure):
            assert (iou_matrix(sure, ours.xyxy).max(axis=1) >= 0.5).all()
        confident += len(sure)
    assert confident >= 4
