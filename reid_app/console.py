"""rich consoles for the command line: reports on stdout, progress and messages on stderr.

Both show every text they are given through ``common.neutralise.terminal_text``: a camera, label or watchlist
name holding escape sequences is printed as ``\\x1b[...``, never obeyed by the terminal (rich's own styling is
added after, so colours still work)."""

from __future__ import annotations


def _safe_console(**options):
    from rich.console import Console
    from rich.segment import Segment

    from common.neutralise import terminal_text

    class SafeConsole(Console):
        def _render_buffer(self, buffer):
            return super()._render_buffer(
                segment if segment.control else Segment(terminal_text(segment.text), segment.style)
                for segment in buffer
            )

    return SafeConsole(**options)


def stdout_console():
    """Console for tables and reports; piped or captured output gets 140 columns instead of 80."""
    console = _safe_console()
    return console if console.is_terminal else _safe_console(width=140)


def stderr_console():
    """Console for progress bars and messages."""
    return _safe_console(stderr=True)
