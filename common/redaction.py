"""Secrets out of everything shown or stored: the one display form of a URL (camera, database, webhook).

A URL's credentials hide in three places: its userinfo (``rtsp://admin:pw@host/``, where the password may itself
hold ``#``, ``?``, ``/`` or ``@``, which a URL parser then misreads as the start of the fragment, query or path),
its query (``?user=admin&password=pw``), and its path or fragment, as many DVRs take them
(``rtsp://host/user=admin&password=pw&channel=1`` or ``.../user=admin_password=pw_channel=1_stream=0.sdp``).
:func:`redact_url` replaces the userinfo by ``***`` and the value of every ``key=value`` pair whose key looks secret
by ``***``, wherever it sits. Only the driver, the stream reader and the HTTP client see a raw URL.
"""

from __future__ import annotations

import logging
import re
from typing import Optional

from common.neutralise import terminal_text

#: Keys whose values are secrets (``pass``, ``pwd``, ``token``, ``auth``, ``sig``, ``user``, ``login``, ...).
SECRET_KEY = re.compile(r"pas|pw|token|secret|key|auth|sig|user|usr|login|cred|session|sid|account", re.IGNORECASE)
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)(.*)$", re.DOTALL)
# a key=value pair after a separator; a value ends at & ; / ? # , at whitespace, or where "_<key>=" starts
_PAIR = re.compile(
    r"(?P<lead>^|[&;/?#_])(?P<key>[A-Za-z0-9.\-]*[A-Za-z][A-Za-z0-9.\-]*)=(?P<value>.*?)"
    r"(?=[&;/?#\s]|_[A-Za-z0-9.\-]+=|$)"
)
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def _redact_pairs(text: str) -> str:
    def hide(match: re.Match) -> str:
        key = match.group("key")
        value = "***" if SECRET_KEY.search(key) and match.group("value") else match.group("value")
        return f"{match.group('lead')}{key}={value}"

    return _PAIR.sub(hide, text)


def redact_url(url: str) -> str:
    """``url`` safe to show: the userinfo (user name and password) replaced by ``***`` and the value of every
    ``key=value`` whose key looks secret (:data:`SECRET_KEY`), in the path, query or fragment, replaced by
    ``***``; anything else unchanged. A string without a scheme is treated the same way (``user:pw@host/x``).

    Args:
        url: a URL as the user gave it (or any text naming one).

    Returns:
        The display form; never raises.
    """
    scheme, userinfo, rest = split_userinfo(url)
    return scheme + ("***@" if userinfo is not None else "") + _redact_pairs(rest)


def split_userinfo(url: str) -> tuple[str, Optional[str], str]:
    """``(scheme with "://" or "", userinfo or None, the rest)`` of ``url``: the userinfo is everything before the
    last ``@`` (a password may hold ``#``, ``?``, ``/`` or ``@`` unescaped, which URL parsers misread); without a
    scheme, only a ``user:password@host`` form counts as one."""
    text = str(url)
    match = _SCHEME.match(text)
    scheme, rest = (match.group(1), match.group(2)) if match else ("", text)
    at = rest.rfind("@")
    if at >= 0 and (match or "/" not in rest[:at] or ":" in rest[:at]):
        return scheme, rest[:at], rest[at + 1 :]
    return scheme, None, rest


def redact_text(text: str) -> str:
    """``text`` with every URL in it passed through :func:`redact_url` (for error messages that quote a URL)."""
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), str(text))


def display_text(text) -> str:
    """What a terminal or log may show of ``text``: URLs redacted, control characters neutralised
    (``common.neutralise.terminal_text``)."""
    return terminal_text(redact_text(text))


def name_from_url(url: str) -> str:
    """A short name for a stream URL from its display form, never holding a credential: the last path part
    without extension and without secret ``key=value`` pairs (``rtsp://h/Streaming/101`` -> ``101``,
    ``rtsp://h/user=a&password=b&channel=1&stream=0.sdp`` -> ``channel=1&stream=0``, ``/dev/video0`` ->
    ``video0``), else the host; ``camera`` when nothing is left. Not yet file-safe."""
    scheme, _, rest = split_userinfo(redact_url(url))
    rest = re.split(r"[?#]", rest, maxsplit=1)[0]
    host, _, path = rest.partition("/") if scheme else ("", "", rest)
    last = next((p for p in reversed(path.split("/")) if p), "")
    if "." in last:
        last = last.rsplit(".", 1)[0]
    last = re.sub(r"(^|[&;_])[A-Za-z0-9.\-]+=\*\*\*", "", last).strip("&;_")
    return last or host.split(":")[0] or "camera"


class RedactingFilter(logging.Filter):
    """A logging filter that passes every record's message through :func:`redact_text` (a second line of
    defence: messages are redacted where they are made, and a library quoting a URL is caught here) and
    ``common.neutralise.terminal_text`` (no escape sequences from names reach the terminal)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        shown = display_text(message)
        if shown != message:
            record.msg, record.args = shown, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = display_text(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True
