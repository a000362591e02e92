"""The dark control-room theme: Qt's Fusion style with a dark palette (low glare on a wall of monitors; the
amber highlight of a selected person and the red playhead stand out on it)."""

from __future__ import annotations

import os

from PySide6.QtGui import QColor, QPalette

#: ``REID_APP_THEME=light`` keeps the platform's own look.
THEME_VARIABLE = "REID_APP_THEME"


def dark_palette() -> QPalette:
    """The dark palette (window 37,37,41; text 220; highlight a muted blue)."""
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: QColor(37, 37, 41),
        QPalette.ColorRole.WindowText: QColor(220, 220, 220),
        QPalette.ColorRole.Base: QColor(26, 26, 29),
        QPalette.ColorRole.AlternateBase: QColor(44, 44, 49),
        QPalette.ColorRole.ToolTipBase: QColor(50, 50, 56),
        QPalette.ColorRole.ToolTipText: QColor(230, 230, 230),
        QPalette.ColorRole.Text: QColor(220, 220, 220),
        QPalette.ColorRole.Button: QColor(50, 50, 56),
        QPalette.ColorRole.ButtonText: QColor(220, 220, 220),
        QPalette.ColorRole.BrightText: QColor(255, 90, 90),
        QPalette.ColorRole.Link: QColor(110, 170, 255),
        QPalette.ColorRole.Highlight: QColor(52, 101, 164),
        QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
        QPalette.ColorRole.PlaceholderText: QColor(130, 130, 130),
    }
    for role, colour in roles.items():
        palette.setColor(role, colour)
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(115, 115, 120))
    return palette


def apply_theme(app) -> str:
    """Give ``app`` (a ``QApplication``) the dark theme unless ``$REID_APP_THEME`` is ``light``; returns the
    theme applied (``dark`` or ``light``)."""
    if os.environ.get(THEME_VARIABLE, "dark").strip().lower() == "light":
        return "light"
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    return "dark"
