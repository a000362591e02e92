"""Text from users and cameras made harmless where it is shown: terminals (no control or escape sequences) and
spreadsheets (no formulas; OWASP "CSV Injection")."""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, and C1 controls (ESC [ ... is how a terminal is driven)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
#: First characters that make a spreadsheet read a cell as a formula (OWASP).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def terminal_text(text: str) -> str:
    """``text`` with every control character but tab and newline shown as ``\\xNN`` (so a label holding ``ESC[2J``
    cannot clear or retitle the terminal)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", str(text))


def csv_cell(value):
    """A CSV cell that no spreadsheet runs as a formula: text starting with ``= + - @``, tab or CR gets a leading
    ``'``; numbers and None pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def one_line(text: str) -> str:
    """``text`` on one line: line breaks shown as ``\\n`` and ``\\r`` (an error's one line on stderr stays one
    line even when it quotes a value holding a newline)."""
    return str(text).replace("\r", "\\r").replace("\n", "\\n")
