"""Starting the desktop app: the Qt environment, the ``QApplication`` (high-DPI, names for ``QSettings``) and the
main window on a database."""

from __future__ import annotations

import logging
import sys
from typing import Optional

from ui.main_window import AppServices, MainWindow
from ui.qt_env import check_display, clean_qt_environment
from ui.theme import apply_theme

log = logging.getLogger(__name__)

ORGANISATION = "reid-app"
APPLICATION = "reid-app"

__all__ = ["AppServices", "create_application", "run_app"]


def create_application(argv: Optional[list[str]] = None):
    """The ``QApplication`` (the existing one when there is one), set up for reid-app.

    Raises:
        UsageError: no display to open a window on (see :func:`ui.qt_env.check_display`).
    """
    removed = clean_qt_environment()
    if removed:
        log.info("ignoring %s set by opencv (its Qt plugins are not PySide6's)", ", ".join(removed))
    check_display()
    from PySide6.QtCore import QCoreApplication, Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication(argv if argv is not None else sys.argv[:1])
    QCoreApplication.setOrganizationName(ORGANISATION)
    QCoreApplication.setApplicationName(APPLICATION)
    QGuiApplication.setApplicationDisplayName("reid-app")
    apply_theme(app)
    return app


def run_app(db_path: str, services: AppServices) -> int:
    """Open the main window on ``db_path`` (a file path or URL; created when missing) and run the event loop;
    returns the exit code.

    Raises:
        UsageError: no display.
    """
    app = create_application()
    window = MainWindow(services)
    window.show()
    window.open_database(db_path)
    log.info("main window shown on the %s platform with database %s", app.platformName(), db_path)
    return app.exec()
