"""rich consoles for the command line: reports on stdout, progress and messages on stderr."""

from __future__ import annotations


def stdout_console():
    """Console for tables and reports; piped or captured output gets 140 columns instead of 80."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=140)


def stderr_console():
    """Console for progress bars and messages."""
    from rich.console import Console

    return Console(stderr=True)
