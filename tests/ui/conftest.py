"""Fixtures for the desktop app: offscreen Qt, a main window on a copy of a real lab ingest."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before pytest-qt makes the QApplication

import pytest  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from common.settings import Settings  # noqa: E402
from reid_app.ingest_runner import IngestChoices, load_query_encoder, prepare_ingest  # noqa: E402
from reid_app.live_session import LiveSession  # noqa: E402
from tests.conftest import OSNET, POSE_DETECTOR, copy_db  # noqa: E402
from ui.main_window import AppServices, MainWindow  # noqa: E402
from ui.theme import apply_theme  # noqa: E402


def real_choices(**overrides) -> IngestChoices:
    """Ingest choices with the real weights from ../shared."""
    return IngestChoices(detector=str(POSE_DETECTOR), reid=str(OSNET), **overrides)


@pytest.fixture
def make_window(qtbot, tmp_path):
    """``make_window(db_path)``: a shown main window whose database is loaded, with settings in ``tmp_path``."""
    settings_path = tmp_path / "settings.ini"

    def make(db_path, wait: bool = True) -> MainWindow:
        settings = Settings(db=db_path)
        services = AppServices(
            prepare_ingest=lambda c: prepare_ingest(c, settings),
            default_choices=real_choices(),
            load_query_encoder=lambda db: load_query_encoder(db, settings, "cpu"),
            start_watch=lambda site, location, choices, on_alert: LiveSession(
                site, location, choices, settings, on_alert
            ),
        )
        apply_theme(QApplication.instance())
        window = MainWindow(services, QSettings(str(settings_path), QSettings.Format.IniFormat))
        qtbot.addWidget(window, before_close_func=_stop_ingest)
        window.show()
        if wait:
            with qtbot.waitSignal(window.overviewLoaded, timeout=30000):
                window.open_database(db_path)
        return window

    return make


def _stop_ingest(window: MainWindow) -> None:
    """Before the window closes at the end of a test: an ingest a failed test left running is cancelled and
    waited for, so that closing asks nothing (a modal question would hang the run offscreen)."""
    worker = window.ingest_worker
    if worker is not None:
        worker.cancel()
        worker.wait()
        window.ingest_worker = None


@pytest.fixture
def lab_window(make_window, lab_db, tmp_path):
    """The main window on a private copy of the real two-camera lab ingest (``lab_db``)."""
    return make_window(copy_db(lab_db, tmp_path / "db"))
