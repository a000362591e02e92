"""Leases on videos being written: who owns a video row (host and process), heartbeats, and when an owner counts as
gone (its process died or its heartbeat is older than :data:`LEASE_TIMEOUT_S`)."""

from __future__ import annotations

import os
import socket
import time
import uuid
from typing import Optional

import psutil

from common.errors import DatabaseError

#: A lease not renewed for this many seconds belongs to a dead or hung process (another host's) and is reclaimed.
LEASE_TIMEOUT_S = 60.0


#: How often an ingest renews the leases of the videos it is writing (seconds).
HEARTBEAT_S = 10.0


class VideoBusyError(DatabaseError):
    """The video is being ingested right now by another live process."""


class LeaseLostError(DatabaseError):
    """The video row this process was writing was taken away (deleted or reclaimed) meanwhile."""


def owner_token() -> str:
    """A new lease owner for one claim of a video by this process: ``host:pid:claim`` (the claim part tells two
    claims of one process apart, e.g. a cancelled ingest in the app and the next one)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def owner_parts(owner: str) -> tuple[str, str]:
    host, _, rest = owner.partition(":")
    return host, rest.split(":")[0]


def owner_alive(owner: Optional[str], heartbeat_at: Optional[float], now: Optional[float] = None) -> bool:
    """Whether the process that leased an ``ingesting`` video still works on it.

    A process of this host is alive while its pid exists and its lease was renewed within
    :data:`LEASE_TIMEOUT_S`; one of another host while its lease was renewed within that time. Rows of older
    reid-app versions (no owner) count as abandoned.
    """
    if not owner or heartbeat_at is None:
        return False
    now = time.time() if now is None else now
    if now - heartbeat_at > LEASE_TIMEOUT_S:
        return False
    host, pid = owner_parts(owner)
    if host != socket.gethostname():
        return True
    try:  # psutil: a probe that also works on Windows (os.kill(pid, 0) would end the process there)
        return psutil.pid_exists(int(pid))
    except (ValueError, OverflowError):
        return True
