"""Site ▸ Adapt model… and Site ▸ Model versions… (issue 31) on copies of real lab ingests, offscreen."""

from __future__ import annotations

import pytest

from tests.conftest import copy_db
from ui import app_calls

pytestmark = pytest.mark.slow


def test_adapt_model_from_the_site_menu_makes_a_checked_version_and_says_what_became_of_it(
    qtbot, make_window, lab_default_db, tmp_path
):
    window = make_window(copy_db(lab_default_db, tmp_path / "db"))
    menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Site")
    assert [a.text() for a in menu.actions()] == ["&Adapt model…", "Model &versions…"]
    window.start_adaptation(1)  # a one-minute budget: training stops early, the rest runs as usual
    qtbot.waitUntil(lambda: window.site_worker is not None, timeout=5000)
    assert window.site_progress.isVisible()
    qtbot.waitUntil(lambda: window.site_worker is None, timeout=300000)
    box = window.site_result
    assert box.isVisible(), window.statusBar().currentMessage()
    text = box.text()
    assert "Check before:" in text and "Check after:" in text
    assert "is now current" in text or "was not made current:" in text
    versions = app_calls.model_versions(window.db)
    assert len(versions) == 2 and versions[1].info["adapted_from"] == versions[0].id
    assert versions[1].current == ("is now current" in text)


def test_a_model_that_cannot_be_fine_tuned_is_refused_with_a_message(qtbot, lab_window):
    window = lab_window  # ingested with an ONNX re-id model: there is no checkpoint to fine-tune
    window.start_adaptation(1)
    qtbot.waitUntil(lambda: window.site_worker is None, timeout=60000)
    message = window.statusBar().currentMessage()
    assert "could not be adapted" in message and "no reid-app checkpoint" in message
    assert len(app_calls.model_versions(window.db)) == 1
