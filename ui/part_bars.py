"""Small per-part similarity bars beside each search result ("why this match"): one row per body part (head,
upper body, lower body, legs) with its name, a bar as long as the part's cosine similarity and the value; a part
that is not visible in the query or the match is written "not visible" in grey."""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter
from PySide6.QtWidgets import QStyledItemDelegate, QStyleOptionViewItem

from ui.item_models import ItemRole

#: Width of the bars' column in pixels (name, bar, value).
BARS_WIDTH = 144
_ROW_HEIGHT = 15
_NAME_WIDTH = 62
_VALUE_WIDTH = 28


def bar_colour(similarity: float) -> QColor:
    """Green for a strongly alike part, amber for a middling one, red for a part that looks different."""
    if similarity >= 0.7:
        return QColor(46, 160, 67)
    if similarity >= 0.4:
        return QColor(210, 153, 34)
    return QColor(200, 60, 60)


class PartBarsDelegate(QStyledItemDelegate):
    """Draws a result row as usual, with the part bars in a column at its right edge."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index) -> None:
        item = index.data(ItemRole)
        parts = getattr(item, "parts", ()) or ()
        if not parts:
            super().paint(painter, option, index)
            return
        text_option = QStyleOptionViewItem(option)
        text_option.rect = QRect(
            option.rect.left(), option.rect.top(), option.rect.width() - BARS_WIDTH, option.rect.height()
        )
        super().paint(painter, text_option, index)
        painter.save()
        font = painter.font()
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.8))
        painter.setFont(font)
        metrics = QFontMetrics(font)
        left = option.rect.right() - BARS_WIDTH + 4
        top = option.rect.top() + max(2, (option.rect.height() - _ROW_HEIGHT * len(parts)) // 2)
        bar_width = BARS_WIDTH - _NAME_WIDTH - _VALUE_WIDTH - 12
        grey = option.palette.color(option.palette.ColorGroup.Disabled, option.palette.ColorRole.Text)
        text = option.palette.color(option.palette.ColorRole.Text)
        for row, (name, value) in enumerate(parts):
            y = top + row * _ROW_HEIGHT
            name_rect = QRect(left, y, _NAME_WIDTH, _ROW_HEIGHT)
            painter.setPen(text if value is not None else grey)
            painter.drawText(
                name_rect,
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                metrics.elidedText(name, Qt.TextElideMode.ElideRight, _NAME_WIDTH),
            )
            bar_left = left + _NAME_WIDTH + 4
            track = QRect(bar_left, y + 4, bar_width, _ROW_HEIGHT - 8)
            painter.fillRect(track, QColor(128, 128, 128, 60))
            if value is None:
                painter.drawText(
                    QRect(bar_left, y, bar_width + _VALUE_WIDTH + 4, _ROW_HEIGHT),
                    Qt.AlignmentFlag.AlignCenter,
                    "not visible",
                )
                continue
            filled = QRect(
                track.left(), track.top(), int(round(track.width() * max(0.0, min(1.0, value)))), track.height()
            )
            painter.fillRect(filled, bar_colour(value))
            painter.drawText(
                QRect(bar_left + bar_width + 4, y, _VALUE_WIDTH, _ROW_HEIGHT),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                f"{value:.2f}",
            )
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem, index) -> QSize:
        """The usual row size plus the bars' column; a row is at least as wide as the list's viewport, so the bars
        sit at its right edge and the text is elided before a horizontal scroll bar is needed."""
        hint = super().sizeHint(option, index)
        item = index.data(ItemRole)
        parts = getattr(item, "parts", ()) or ()
        if not parts:
            return hint
        view = option.widget
        fit = 0
        if view is not None and hasattr(view, "spacing"):  # room for a vertical scroll bar that may come
            fit = view.viewport().width() - view.verticalScrollBar().sizeHint().width() - 2 * view.spacing() - 2
        width = max(fit, 48 + 2 * BARS_WIDTH) if fit else hint.width() + BARS_WIDTH
        return QSize(width, max(hint.height(), _ROW_HEIGHT * len(parts) + 4))
