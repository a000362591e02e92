"""Appearance in the tracker (``--tracker botsort-reid``, the default): on the first 40 s of PETS 2009 S2.L1 at 5
analysed frames/s, with the same detector and frames, associating by the re-id embedding of every confident box as
well as by motion keeps people's identities through crossings that box motion alone swaps (TrackEval, IoU 0.5)."""

from __future__ import annotations

import pytest

from models.encoders import load_encoder
from models.tracking import CameraTracker, PersonTracker
from pipelines.ingest.mot_eval import boxes_by_frame, read_mot_ground_truth, score_tracking
from pipelines.ingest.video import VideoSource
from tests.conftest import OSNET, PLAIN_DETECTOR, SHARED, VIDEOS, _require


def _track(tracker: PersonTracker, frames) -> dict:
    rows = []
    for frame in frames:
        for det in tracker.update(frame.image):
            rows.append((frame.index, det.track_id, *map(float, det.box)))
    return boxes_by_frame(rows)


@pytest.mark.slow
def test_appearance_keeps_identities_that_motion_alone_swaps():
    frames = list(
        VideoSource(_require(VIDEOS / "pets2009_s2l1_view001.avi"), analysis_fps=5, max_duration_s=40).frames()
    )
    truth = read_mot_ground_truth(_require(SHARED / "data" / "mot" / "PETS09-S2L1" / "gt.txt"), 0.625)
    indexes = [f.index for f in frames]
    encoder = load_encoder(_require(OSNET))
    motion = score_tracking(
        truth, _track(PersonTracker(_require(PLAIN_DETECTOR), tracker="bytetrack"), frames), indexes
    )
    appearance = score_tracking(
        truth, _track(PersonTracker(_require(PLAIN_DETECTOR), tracker="botsort-reid", encoder=encoder), frames), indexes
    )
    assert appearance["IDSW"] < motion["IDSW"] and appearance["IDF1"] > motion["IDF1"] + 3, (motion, appearance)


def test_the_appearance_tracker_needs_an_encoder():
    with pytest.raises(ValueError, match="needs the re-id encoder"):
        CameraTracker("botsort-reid")
