"""Identity ids: kept by the identity that shares most tracks, never reused for another person."""

from __future__ import annotations

import numpy as np

from storage.database import open_database
from storage.identities import load_identities, replace_identities
from storage.model_registry import get_or_create_model
from storage.videos import begin_video
from storage.writer import VideoWriter
from tests.factories import observation as _obs
from tests.factories import video_info as _info


def test_an_id_that_meant_one_person_never_comes_back_meaning_another(tmp_path):
    db = open_database(tmp_path / "ids.db")
    model = get_or_create_model(db, "m", "h", 3)
    writer = VideoWriter(db, begin_video(db, _info(), model), model, 0.0)
    vectors = np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
    writer.write([_obs(t, t, 0.5, vectors[t - 1]) for t in (1, 2, 3, 4)], vectors, 4)
    writer.finish(4)
    first = replace_identities(db, model, [([1, 2], 0.9), ([3], 1.0), ([4], 1.0)], 0.5)
    # the person of the last identity leaves (its track joins another); a new person appears
    second = replace_identities(db, model, [([1, 2], 0.9), ([3, 4], 0.8)], 0.5)
    assert second == first[:2]
    third = replace_identities(db, model, [([1], 1.0), ([2], 1.0), ([3, 4], 0.8)], 0.5)  # a split
    assert third[0] == first[0] and third[2] == first[1]
    assert third[1] not in first, "a split reused an id that meant someone else before"
    assert sorted(i.id for i in load_identities(db)) == sorted(third)
    db.close()
