"""Running the ``reid-app`` entry point in this process (fast: no interpreter start or imports per call), and the
checks every user-facing outcome must pass."""

from __future__ import annotations

import contextlib
import io

from tests.conftest import CliResult


def run_main(*args) -> CliResult:
    """``reid-app ARGS`` through :func:`reid_app.cli.main` in this process; any exception other than
    ``SystemExit`` escapes (it would have been a traceback for the user)."""
    from reid_app.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return CliResult(code, out.getvalue(), err.getvalue())


def assert_clean_outcome(result: CliResult, *codes: int) -> None:
    """Exit code among ``codes`` (default 0, 1, 2), no traceback, and every error a single ``reid-app:`` line."""
    assert result.code in (codes or (0, 1, 2)), (result.code, result.stderr)
    for text in (result.stdout, result.stderr):
        assert "Traceback" not in text and "terminate called" not in text, text
    stray = [
        line
        for line in result.stderr.splitlines()
        if line.strip() and not line.startswith("reid-app") and "━" not in line and not line.startswith(" ")
    ]
    assert not stray, result.stderr


def assert_one_error(result: CliResult, *words: str, code: int = 2) -> None:
    """Exit ``code`` with exactly one ``reid-app: error:`` line holding every word."""
    assert_clean_outcome(result, code)
    errors = [line for line in result.stderr.splitlines() if line.startswith("reid-app: error:")]
    assert len(errors) == 1, result.stderr
    for word in words:
        assert word in errors[0], errors[0]
