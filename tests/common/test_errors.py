"""Errors name the user's settings, not the CLI's options: the CLI words them as options, the app as its fields."""

import pickle

import pytest

from common.errors import DatabaseError, UsageError, setting
from pipelines.ingest.choices import IngestChoices


def test_the_cli_words_settings_as_options_and_another_front_end_as_it_likes():
    error = UsageError(f"{setting('crops_per_second')} must be greater than 0, got -1; see {setting('fps')}")
    assert str(error) == "--crops-per-second must be greater than 0, got -1; see --fps"
    assert error.settings == ["crops_per_second", "fps"]
    assert error.worded(lambda name: f"<{name}>") == "<crops_per_second> must be greater than 0, got -1; see <fps>"


def test_a_message_without_settings_and_a_pickled_error_read_the_same():
    plain = DatabaseError("database /x.db is damaged")
    assert str(plain) == "database /x.db is damaged" and plain.settings == []
    error = pickle.loads(pickle.dumps(UsageError(f"{setting('db')} x is not a database URL")))  # Ray workers
    assert str(error) == "--db x is not a database URL" and error.settings == ["db"]


def test_a_validated_choice_names_the_setting_it_refuses():
    with pytest.raises(UsageError) as caught:
        IngestChoices(analysis_fps=0).check()
    assert caught.value.settings == ["fps"] and str(caught.value).startswith("--fps must be greater than 0")


def test_a_summary_note_is_worded_like_an_error():
    from common.errors import word_settings

    note = f"already ingested; use {setting('force')} to replace it"
    assert word_settings(note) == "already ingested; use --force to replace it"
    assert word_settings(note, str.upper) == "already ingested; use FORCE to replace it"
