"""The match list shows why each result matched: small bars per body part, greyed when the part is not visible."""

import pytest
from PySide6.QtGui import QImage, QPainter

from ui.item_models import ItemRole, ResultItem
from ui.part_bars import BARS_WIDTH, bar_colour
from ui.results import QueryInfo, ResultsPanel

PARTS = (("head", None), ("upper body", 0.91), ("lower body", 0.84), ("legs", 0.12))


def _item(track_id: int, parts=PARTS) -> ResultItem:
    return ResultItem(track_id, 1, "cam1", 10 + track_id, 1.0e9, 1.0e9, 1.0e9 + 5, 0.8, None, None, False, parts)


@pytest.mark.parametrize("value, greenest", [(0.95, True), (0.5, False), (-0.2, False)])
def test_bar_colours_go_from_green_to_red(value, greenest):
    colour = bar_colour(value)
    assert (colour.green() > colour.red()) == greenest


def test_result_rows_draw_one_bar_per_part_in_their_colour(qtbot):
    panel = ResultsPanel()
    qtbot.addWidget(panel)
    panel.resize(520, 500)
    panel.show()
    panel.show_results(QueryInfo(7, "cam0", 1.0e9, 1.0e9 + 3, None), [_item(1), _item(2, ())], 12.0)
    index = panel.proxy.index(0, 0)
    item = index.data(ItemRole)
    assert item.parts_text() == "upper body 0.91, lower body 0.84, legs 0.12, head not visible"
    assert "why: upper body 0.91" in panel.proxy.index(0, 0).data(3)  # the tooltip (Qt.ToolTipRole)
    delegate = panel.view.itemDelegate()
    plain = panel.proxy.index(1, 0)
    with_bars = delegate.sizeHint(_style_option(panel, index), index)
    without = delegate.sizeHint(_style_option(panel, plain), plain)
    # rows with bars span the list's width (text elided before a horizontal scroll bar); rows without keep theirs
    assert with_bars.width() >= min(without.width() + BARS_WIDTH, panel.view.viewport().width() - 8)
    assert with_bars.width() <= max(panel.view.viewport().width(), 48 + 2 * BARS_WIDTH)
    image = QImage(panel.view.visualRect(index).size(), QImage.Format.Format_ARGB32)
    image.fill(0xFFFFFFFF)
    painter = QPainter(image)
    style = _style_option(panel, index)
    style.rect = image.rect()
    delegate.paint(painter, style, index)
    painter.end()
    bars = [image.pixel(x, y) for x in range(image.width() - BARS_WIDTH, image.width()) for y in range(image.height())]
    green, red = bar_colour(0.91).rgb(), bar_colour(0.12).rgb()
    assert green in bars and red in bars  # upper body drawn green, legs red; the head has no bar colour
    assert bar_colour(0.5).rgb() not in bars


def _style_option(panel, index):
    from PySide6.QtWidgets import QStyleOptionViewItem

    option = QStyleOptionViewItem()
    option.initFrom(panel.view)
    option.rect = panel.view.visualRect(index)
    option.decorationSize = panel.view.iconSize()
    return option
