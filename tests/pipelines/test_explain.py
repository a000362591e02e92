"""Why this match: part slices of the descriptor compared where keypoints show the part in both people."""

import numpy as np

from pipelines.matching.explain import PartSimilarity, describe_parts, explain_match, part_slices, visible_parts

LAYOUT = [
    {"name": "global", "start": 0, "stop": 4},
    {"name": "head", "start": 4, "stop": 6},
    {"name": "upper body", "start": 6, "stop": 8},
    {"name": "lower body", "start": 8, "stop": 10},
    {"name": "legs", "start": 10, "stop": 12},
]
NAMES = ["head", "upper body", "lower body", "legs"]


def _standing_person(x0: float = 100.0, y0: float = 50.0) -> tuple[np.ndarray, np.ndarray]:
    """A 60x200 px person box in frame pixels and confident COCO-17 keypoints of a standing person in it."""
    points = [
        (30, 15),
        (27, 12),
        (33, 12),
        (24, 14),
        (36, 14),  # nose, eyes, ears
        (15, 45),
        (45, 45),
        (10, 75),
        (50, 75),
        (8, 100),
        (52, 100),  # shoulders, elbows, wrists
        (20, 100),
        (40, 100),
        (20, 150),
        (40, 150),
        (20, 195),
        (40, 195),
    ]  # hips, knees, ankles
    keypoints = np.array([(x0 + x, y0 + y, 0.9) for x, y in points], np.float32)
    return np.array([x0, y0, x0 + 60, y0 + 200], np.float32), keypoints


def test_part_slices_leave_out_the_global_branch():
    assert part_slices(LAYOUT) == [("head", 4, 6), ("upper body", 6, 8), ("lower body", 8, 10), ("legs", 10, 12)]
    assert part_slices(None) == [] and part_slices([{"name": "global", "start": 0, "stop": 256}]) == []


def test_each_part_is_the_cosine_of_its_own_slice():
    query = np.array([1, 0, 0, 0, 1, 0, 0, 1, 1, 1, 3, 4], np.float32)
    match = np.array([0, 1, 0, 0, 1, 0, 0, -1, 1, -1, 3, 4], np.float32)
    parts = explain_match(LAYOUT, query, match)
    assert [p.name for p in parts] == NAMES
    assert [round(p.similarity, 4) for p in parts] == [1.0, -1.0, 0.0, 1.0]
    hidden = explain_match(LAYOUT, query, match, {"head": False}, {"legs": False})
    assert [p.visible for p in hidden] == [False, True, True, False]


def test_visibility_comes_from_the_keypoints_of_most_sightings():
    box, keypoints = _standing_person()
    assert visible_parts([(box, keypoints)], NAMES) == dict.fromkeys(NAMES, True)
    legs_hidden = keypoints.copy()
    legs_hidden[13:, 2] = 0.0  # knees and ankles behind a counter
    seen = visible_parts([(box, legs_hidden)] * 2 + [(box, keypoints)], NAMES)
    assert seen == {"head": True, "upper body": True, "lower body": False, "legs": False}
    assert visible_parts([(box, None)], NAMES) == dict.fromkeys(NAMES, False)  # no pose: nothing located
    # stripe models and people with no sightings: nothing says a part is hidden
    assert visible_parts([(box, None)], ["stripe 1", "stripe 2"]) == {"stripe 1": True, "stripe 2": True}
    assert visible_parts([], NAMES) == dict.fromkeys(NAMES, True)


def test_the_explanation_reads_compared_parts_first():
    parts = [PartSimilarity("head", None), PartSimilarity("upper body", 0.912), PartSimilarity("legs", 0.618)]
    assert describe_parts(parts) == "upper body 0.91, legs 0.62, head not visible"
    assert describe_parts([]) == ""
