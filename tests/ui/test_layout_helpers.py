"""The player's geometry helpers: grid columns and landscape tiles, non-overlapping labels, ruler ticks."""

from __future__ import annotations

from datetime import datetime

import pytest
from PySide6.QtCore import QRectF

from common.timefmt import KNOWN_TIME_FROM
from ui.player import best_columns, place_labels, tile_rects
from ui.timeline import tick_label, tick_times


@pytest.mark.parametrize(
    "count, width, height, columns",
    [
        (1, 900, 800, 1),
        (2, 900, 800, 1),
        (2, 1600, 500, 2),
        (4, 1600, 900, 2),
        (3, 1800, 400, 3),
        (9, 1500, 900, 3),
    ],
)
def test_columns_give_the_largest_frames(count, width, height, columns):
    assert best_columns(count, width, height, 16 / 9) == columns


def test_tiles_keep_the_frame_aspect_fit_and_do_not_overlap():
    for count in range(1, 10):
        for width, height in ((970, 488), (640, 900), (1600, 600)):
            tiles = tile_rects(count, width, height, 16 / 9)
            assert len(tiles) == count
            area = QRectF(0, 0, width, height).adjusted(-0.01, -0.01, 0.01, 0.01)
            for i, t in enumerate(tiles):
                assert t.width() / t.height() == pytest.approx(16 / 9)
                assert area.contains(t)
                for u in tiles[i + 1 :]:
                    assert not t.intersects(u)
    assert tile_rects(0, 900, 500, 16 / 9) == [] and tile_rects(2, 0, 0, 16 / 9) == []


def test_labels_of_crowded_boxes_do_not_overlap_each_other_or_the_caption():
    caption = QRectF(4, 4, 300, 20)
    boxes = [QRectF(20, 10, 40, 120), QRectF(30, 15, 40, 120), QRectF(25, 12, 50, 100), QRectF(400, 200, 30, 80)]
    sizes = [(60, 16)] * len(boxes)
    bounds = QRectF(0, 0, 640, 360)
    labels = place_labels(boxes, sizes, bounds, [caption])
    assert len(labels) == len(boxes)
    for i, a in enumerate(labels):
        assert bounds.contains(a) and not a.intersects(caption)
        for b in labels[i + 1 :]:
            assert not a.intersects(b)
    assert labels[3].bottom() <= boxes[3].top()  # room above: the label sits on its box


def test_ruler_ticks_are_round_times_of_day_spaced_for_the_width():
    start = datetime(2024, 6, 18, 13, 10, 7, 300000).timestamp()
    ticks = tick_times(start, start + 90, 800)
    assert len(ticks) >= 4 and all(start <= t <= start + 90 for t in ticks)
    steps = {round(b - a, 6) for a, b in zip(ticks, ticks[1:])}
    assert len(steps) == 1 and (steps.pop() / 90 * 800) >= 90
    assert all(datetime.fromtimestamp(t).second % 5 == 0 and datetime.fromtimestamp(t).microsecond == 0 for t in ticks)
    assert tick_label(ticks[0], 15) == datetime.fromtimestamp(ticks[0]).strftime("%H:%M:%S")
    hours = tick_times(start, start + 3 * 3600, 800)
    assert all(datetime.fromtimestamp(t).minute in (0, 30) and datetime.fromtimestamp(t).second == 0 for t in hours)


def test_ruler_ticks_of_footage_without_a_clock_count_from_the_start():
    ticks = tick_times(0.0, 16.2, 800)
    assert ticks[0] == 0.0 and ticks[-1] <= 16.2
    assert [tick_label(t, ticks[1] - ticks[0]) for t in ticks[:2]] == ["0:00:00", "0:00:02"]
    assert ticks[-1] < KNOWN_TIME_FROM
    assert tick_times(5.0, 5.0, 800) == [] and tick_times(0.0, 10.0, 0) == []
