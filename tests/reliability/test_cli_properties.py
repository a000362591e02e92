"""Property-based tests over command-line values (issue 12): whatever a user types for ingest, search and
feedback options, the outcome is exit 0, 1 or 2 with no traceback, and every error is one ``reid-app:`` line.

Values come from hypothesis: numbers of any size and sign, NaN and infinities, dates, empty and odd text (every
character a command line can carry: no NUL, no lone surrogates). Ingest runs on an unreadable video so no model
is loaded; search and feedback run on a private copy of a real lab database.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import copy_db
from tests.reliability.cli import assert_clean_outcome, run_main

_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=24)
_VALUES = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(
        [
            "nan",
            "inf",
            "-inf",
            "1e300",
            "-0",
            "0",
            "1",
            "3",
            "2026-11-21T09:30:00",
            "2026-13-40",
            "9999-12-31T23:59:59Z",
            "1764670000000",
            "",
            " ",
            "--db",
            "-h",
        ]
    ),
    _TEXT,
)
_PROPERTY = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def unreadable_video(tmp_path_factory):
    video = tmp_path_factory.mktemp("videos") / "notes.mp4"
    video.write_text("not a video\n" * 20)
    return video


@pytest.fixture(scope="module")
def private_db(lab_db, tmp_path_factory):
    return copy_db(lab_db, tmp_path_factory.mktemp("properties"))


@pytest.mark.slow
@_PROPERTY
@given(
    option=st.sampled_from(
        [
            "--fps",
            "--duration",
            "--start",
            "--batch-size",
            "--crops-per-second",
            "--camera",
            "--tracker",
            "--device",
            "--pose",
            "--detector-size",
        ]
    ),
    value=_VALUES,
)
def test_ingest_options(tmp_path, unreadable_video, option, value):
    result = run_main("ingest", unreadable_video, "--db", tmp_path / "x.db", f"{option}={value}")
    assert_clean_outcome(result, 1, 2)


@_PROPERTY
@given(
    track=_VALUES,
    option=st.sampled_from(
        ["--top-k", "--after", "--before", "--camera", "--expand", "--track-similarity", "--exclude-camera"]
    ),
    value=_VALUES,
)
def test_search_options(private_db, track, option, value):
    assert_clean_outcome(run_main("search", "--db", private_db, f"--track={track}", f"{option}={value}"))


@_PROPERTY
@given(
    verdict=st.sampled_from(["confirm", "reject", "forget", "merge", "split"]),
    first=st.one_of(st.integers(min_value=1, max_value=20).map(str), _VALUES),
    second=st.one_of(st.integers(min_value=1, max_value=20).map(str), _VALUES),
)
def test_feedback_arguments(private_db, verdict, first, second):
    assert_clean_outcome(run_main("feedback", verdict, "--db", private_db, "--", first, second))
