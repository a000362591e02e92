"""The app words an error's settings as its own fields, never as CLI options it does not have."""

import pytest

from common.errors import UsageError, WeightsError, setting
from pipelines.ingest.choices import IngestChoices
from ui.jobs import describe_error


def test_a_refused_choice_names_the_apps_field():
    with pytest.raises(UsageError) as caught:
        IngestChoices(analysis_fps=0).check()
    text = describe_error(caught.value)
    assert text.startswith("the Frames per second field must be greater than 0") and "--" not in text


def test_a_missing_detector_says_which_field_to_set_and_a_bug_is_not_dressed_as_a_mistake():
    error = WeightsError(f"detector weights 'x.pt' not found; set {setting('detector')} to a local model file")
    assert describe_error(error) == "detector weights 'x.pt' not found; set the Detector field to a local model file"
    assert describe_error(KeyError("k")).startswith("unexpected error: KeyError")


def test_a_summary_note_names_what_the_app_cannot_do_as_the_command_line():
    from ui.jobs import app_words

    note = f"cam0.mp4 is already ingested (camera 1, video 1); use {setting('force')} to replace it"
    assert app_words(note).endswith("use 'reid-app ingest --force' (the command line) to replace it")
