"""Watchlist: persons of interest, matched against live tracks as their descriptors grow, with alerts.

An entry's descriptor comes from an identity (the normalised mean of its member tracks' descriptors), a track
(its descriptor), or a person image (encoded by the re-id model the database's embeddings were made with). A live
track alerts when the cosine similarity of its running descriptor (the quality-weighted mean of its embeddings,
``storage.writer.VideoWriter``) to an entry reaches the threshold, once it has ``min_embeddings`` embeddings.
Repeats are suppressed: one alert per (entry, track), and none for the same entry on the same camera within
``repeat_s`` seconds of the last (a person whose track is cut in two, e.g. at a recording segment boundary).

Alerts are stored (``alerts`` table), audited (``alert``), printed, and POSTed as JSON to a webhook when one is
configured, from a persistent outbox on its own thread (see :class:`AlertDispatcher`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import unquote

import httpx
import numpy as np

from common.errors import UsageError
from common.redaction import redact_text, redact_url, split_userinfo
from models.parts import fallback_stripes, stripe_boxes
from pipelines.ingest.engine import register_encoder
from pipelines.matching.identities import current_threshold
from pipelines.matching.search import read_query_image
from storage.audit import record
from storage.catalog import best_thumbnails
from storage.database import Database
from storage.identities import load_identities
from storage.model_registry import list_models
from storage.outbox import OutboxItem, abandon_interrupted, claim_due, enqueue, pending, settle
from storage.reads import get_tracks
from storage.vectors import usable_embedding
from storage.watchlist import Watched, add_alert, add_entry, alerted_tracks, list_entries
from storage.writer import TrackUpdate

log = logging.getLogger(__name__)


def watch_identity(db: Database, identity_id: int, name: str, note: str = "") -> int:
    """Put identity ``identity_id`` on the watchlist as ``name``; returns the entry id.

    Raises:
        UsageError: no such identity, or none of its tracks has a descriptor.
    """
    found = load_identities(db, identity_ids=[identity_id])
    if not found or not found[0].track_ids:
        raise UsageError(f"{db.location} has no identity {identity_id}; see 'reid-app identities'")
    identity = found[0]
    descriptors = [
        t.descriptor
        for t in get_tracks(db, identity.track_ids).values()
        if t.descriptor is not None and t.descriptor_model_id == identity.model_id
    ]
    if not descriptors:
        raise UsageError(f"identity {identity_id} has no encoded track to watch for")
    vector = np.mean(np.stack(descriptors), axis=0)
    return add_entry(db, name, "identity", str(identity_id), identity.model_id, vector, note)


def watch_track(db: Database, track_id: int, name: str, note: str = "") -> int:
    """Put track ``track_id`` on the watchlist as ``name``; returns the entry id.

    Raises:
        UsageError: no such track, or it has no descriptor (none of its sightings was encoded).
    """
    track = get_tracks(db, [track_id]).get(track_id)
    if track is None:
        raise UsageError(f"{db.location} has no track {track_id}")
    if track.descriptor is None or track.descriptor_model_id is None:
        raise UsageError(f"track {track_id} has no descriptor (none of its sightings was encoded)")
    return add_entry(db, name, "track", str(track_id), track.descriptor_model_id, track.descriptor, note)


def watch_image(db: Database, image: Path, name: str, encoder, note: str = "") -> int:
    """Put the person in ``image`` (a crop of one person, any size) on the watchlist as ``name``, encoded by
    ``encoder`` (``models.encoders.ReIDEncoder``; use the database's model so that it compares with its
    embeddings); returns the entry id.

    Raises:
        UsageError: the image cannot be read.
    """

    crop = read_query_image(image)
    boxes = stripe_boxes(crop.shape[0], crop.shape[1], fallback_stripes(encoder.num_parts))[None]
    vector = encoder.encode([crop], boxes)[0]
    if not usable_embedding(vector):
        raise UsageError(
            f"re-id model {encoder.name} gave an unusable embedding for {image} (not finite or zero); try another crop"
        )
    model_id = register_encoder(db, encoder)
    return add_entry(db, name, "image", str(Path(image).resolve()), model_id, vector, note)


def carry_entries(db: Database, old_model: int, new_model: int, encoder=None) -> list[str]:
    """Give every watchlist entry of ``old_model`` a twin for ``new_model`` (a model version made current:
    ``pipelines.adaptation.versions``), so live matching keeps watching for everyone: an identity's or a track's
    descriptor is taken again from the new model's track descriptors, an image is encoded again by ``encoder``
    (the new model). The old entries stay, for a rollback; an entry that already has its twin is left alone.

    Returns:
        One line per entry that could not be carried (its track or identity is gone, its image is missing or no
        encoder was given), to tell the user to add it again.
    """
    have = {(e.kind, e.source, e.name) for e in list_entries(db, new_model)}
    lost = []
    for entry in list_entries(db, old_model):
        if (entry.kind, entry.source, entry.name) in have:
            continue
        vector = None
        if entry.kind == "track":
            track = get_tracks(db, [int(entry.source)]).get(int(entry.source))
            if track is not None and track.descriptor_model_id == new_model:
                vector = track.descriptor
        elif entry.kind == "identity":
            found = load_identities(db, new_model, identity_ids=[int(entry.source)])
            tracks = get_tracks(db, found[0].track_ids).values() if found else []
            descriptors = [t.descriptor for t in tracks if t.descriptor_model_id == new_model]
            vector = np.mean(np.stack(descriptors), axis=0) if descriptors else None
        elif encoder is not None and Path(entry.source).is_file():
            try:
                crop = read_query_image(Path(entry.source))
            except UsageError:
                crop = None
            if crop is not None:
                boxes = stripe_boxes(crop.shape[0], crop.shape[1], fallback_stripes(encoder.num_parts))[None]
                vector = encoder.encode([crop], boxes)[0]
        if vector is None or not usable_embedding(np.asarray(vector, np.float32)):
            lost.append(f"watchlist entry {entry.id} ({entry.name}, {entry.kind} {entry.source})")
            continue
        add_entry(db, entry.name, entry.kind, entry.source, new_model, vector, entry.note)
    return lost


@dataclass
class WatchlistHit:
    """A live track matching a watchlist entry."""

    entry: Watched
    camera: str
    update: TrackUpdate
    similarity: float


class WatchlistMatcher:
    """Compares live track descriptors with the watchlist (module docstring).

    Args:
        entries: the entries of one model (``storage.watchlist.list_entries``).
        threshold: lowest cosine similarity that alerts.
        min_embeddings: a track alerts only once its descriptor averages at least this many embeddings.
        repeat_s: no second alert for the same entry on the same camera within this many seconds.
        alerted: ``(entry id, track id)`` pairs that already alerted (stored alerts).
    """

    def __init__(
        self,
        entries: list[Watched],
        threshold: float,
        min_embeddings: int = 2,
        repeat_s: float = 60.0,
        alerted: Optional[set[tuple[int, int]]] = None,
    ):
        self.entries = list(entries)
        self.threshold = float(threshold)
        self.min_embeddings = int(min_embeddings)
        self.repeat_s = float(repeat_s)
        self._alerted = set(alerted or ())
        self._last: dict[tuple[int, str], float] = {}
        dims = self.entries[0].vector.shape[0] if self.entries else 0
        self._matrix = np.stack([e.vector for e in self.entries]) if self.entries else np.zeros((0, dims), np.float32)

    def check(self, camera: str, updates: list[TrackUpdate]) -> list[WatchlistHit]:
        """The alerts these track updates raise (each recorded as raised, for suppression)."""
        hits = []
        if not self.entries:
            return hits
        for update in updates:
            if update.num_embeddings < self.min_embeddings or update.descriptor.shape[0] != self._matrix.shape[1]:
                continue
            scores = self._matrix @ update.descriptor
            for k in np.argsort(-scores):
                if scores[k] < self.threshold:
                    break
                entry = self.entries[int(k)]
                if (entry.id, update.track_id) in self._alerted:
                    continue
                self._alerted.add((entry.id, update.track_id))
                last = self._last.get((entry.id, camera))
                if last is not None and abs(update.timestamp - last) < self.repeat_s:
                    self._last[(entry.id, camera)] = max(last, update.timestamp)
                    continue
                self._last[(entry.id, camera)] = update.timestamp
                hits.append(WatchlistHit(entry, camera, update, float(scores[k])))
        return hits


def load_matcher(
    db: Database, threshold: Optional[float] = None, repeat_s: float = 60.0, min_embeddings: int = 2
) -> WatchlistMatcher:
    """A matcher over the watchlist entries of the database's main model (the one with most embeddings; with
    none yet, every entry), at ``threshold`` or else the model's own
    (``pipelines.matching.identities.current_threshold``)."""

    models = list_models(db)
    entries = list_entries(db, models[0].id if models else None)
    if threshold is None:
        model_id = models[0].id if models else (entries[0].model_id if entries else None)
        threshold = current_threshold(db, model_id) if model_id is not None else 0.75
    return WatchlistMatcher(entries, threshold, min_embeddings, repeat_s, alerted_tracks(db))


def alert_payload(alert_id: int, hit: WatchlistHit, thumbnail: Optional[bytes]) -> dict:
    """The JSON body of an alert (webhook and console): ids, names, times (epoch seconds and ISO 8601 UTC),
    similarity and, when known, the sighting's thumbnail as base64 JPEG."""
    when = datetime.fromtimestamp(hit.update.timestamp, timezone.utc).isoformat(timespec="milliseconds")
    body = {
        "alert_id": alert_id,
        "watchlist_id": hit.entry.id,
        "name": hit.entry.name,
        "note": hit.entry.note,
        "camera": hit.camera,
        "track_id": hit.update.track_id,
        "sighting_id": hit.update.sighting_id,
        "timestamp": hit.update.timestamp,
        "time": when,
        "similarity": round(hit.similarity, 4),
    }
    if thumbnail:
        body["thumbnail_jpeg_base64"] = base64.b64encode(thumbnail).decode("ascii")
    return body


class AlertDispatcher:
    """Stores, audits and delivers alerts: ``on_alert(payload)`` (console, app) at once, the webhook from a
    persistent outbox (``storage.outbox``) on its own thread, so a slow receiver never holds up the cameras.

    Delivery is at most once per alert id: an attempt that certainly did not reach the receiver (no connection)
    or that it refused for now (HTTP 5xx, 429) is retried with exponential backoff (``backoff_s``, doubled each
    time, ``attempts`` in all), also by the next watch after a restart; an attempt whose outcome is unknown (no
    reply within ``timeout_s`` seconds in all, the connection dropped after the request was sent, a process killed
    mid-POST) is never repeated. Redirects are not followed (a 3xx is stored as such). The body carries
    ``alert_id`` and the request an ``Idempotency-Key`` header of it. The HTTP client is httpx; credentials in the
    URL (``http://user:pw@host:port/hook``) are sent as HTTP basic auth and never shown.

    Args:
        db: where alerts and the outbox are stored.
        webhook: URL that receives each alert as an HTTP POST with a JSON body (None: none).
        on_alert: called with each alert's payload (:func:`alert_payload`) on the caller's thread.
        timeout_s: seconds one attempt may take in all (connect, send, reply).
        attempts: attempts per alert at most.
        backoff_s: seconds before the second attempt (then doubled).

    Raises:
        UsageError: ``webhook`` is not an http(s) URL (shown redacted).
    """

    def __init__(
        self,
        db: Database,
        webhook: Optional[str] = None,
        on_alert: Optional[Callable[[dict], None]] = None,
        timeout_s: float = 5.0,
        attempts: int = 5,
        backoff_s: float = 2.0,
        clock: Callable[[], float] = time.time,
    ):
        self._target = webhook_target(webhook) if webhook is not None else None
        self.db = db
        self.webhook = webhook
        self.on_alert = on_alert
        self.timeout_s = timeout_s
        self.attempts = max(int(attempts), 1)
        self.backoff_s = backoff_s
        self.clock = clock
        self.raised = 0
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._poster: Optional[threading.Thread] = None
        if webhook is not None:
            abandon_interrupted(
                db,
                "the process stopped while posting; not sent again (it may have arrived)",
                self._delivered("webhook unknown (interrupted)"),
            )
            self._poster = threading.Thread(target=self._post_forever, name="alert-webhook", daemon=True)
            self._poster.start()

    def _delivered(self, webhook: str = "") -> str:
        """An alert's ``delivered`` text: ``console`` when printed, then what the webhook did (``webhook 200``)."""
        return ", ".join(filter(None, ["console" if self.on_alert is not None else "", webhook]))

    def raise_alerts(self, hits: list[WatchlistHit]) -> list[dict]:
        """Store, audit and deliver each hit; returns their payloads."""
        payloads = []
        if not hits:
            return payloads
        thumbnails = {
            track_id: jpeg
            for track_id, (_, jpeg) in best_thumbnails(self.db, [h.update.track_id for h in hits]).items()
        }
        for hit in hits:
            delivered = self._delivered("webhook queued" if self._poster is not None else "")
            alert_id = add_alert(
                self.db,
                hit.entry.id,
                hit.camera,
                hit.update.track_id,
                hit.update.sighting_id,
                hit.update.timestamp,
                hit.similarity,
                delivered,
            )
            payload = alert_payload(alert_id, hit, thumbnails.get(hit.update.track_id))
            record(
                self.db,
                "alert",
                alert_id=alert_id,
                watchlist_id=hit.entry.id,
                name=hit.entry.name,
                camera=hit.camera,
                track_id=hit.update.track_id,
                timestamp=hit.update.timestamp,
                similarity=round(hit.similarity, 4),
            )
            self.raised += 1
            if self.on_alert is not None:
                self.on_alert(payload)
            if self._poster is not None:
                enqueue(self.db, alert_id, json.dumps(payload), self.clock())
                self._wake.set()
            payloads.append(payload)
        return payloads

    def close(self, wait_s: float = 10.0) -> int:
        """Send what is due (waiting at most ``wait_s`` seconds), then stop; returns the alerts still queued for
        the webhook (kept in the database and sent by the next watch; a warning says how many)."""
        if self._poster is None:
            return 0
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            count, first = pending(self.db)
            if count == 0 or first is None or first > self.clock() + deadline - time.monotonic():
                break  # nothing queued is due before the deadline
            time.sleep(0.05)
        self._stopping.set()
        self._wake.set()
        self._poster.join(max(deadline - time.monotonic(), 0.0) + self.timeout_s + 1.0)
        count, _ = pending(self.db)
        if count:
            log.warning(
                "%d alert(s) not yet delivered to the webhook %s are kept and will be sent when watch runs again",
                count,
                redact_url(self.webhook),
            )
        return count

    def _post_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                item = claim_due(self.db, self.clock())
                count, first = pending(self.db) if item is None else (0, None)
            except Exception as exc:  # the database failing must not kill the poster: try again shortly
                log.warning("alert webhook: cannot read the outbox (%s)", redact_text(exc))
                item, count, first = None, 0, None
            if item is None:  # wait for the next due row (at most 1 s) or a new alert
                self._wake.wait(1.0 if not count or first is None else min(max(first - self.clock(), 0.01), 1.0))
                self._wake.clear()
                continue
            state, outcome, retry = self._attempt(item)
            next_at = 0.0
            if retry and item.attempts + 1 < self.attempts:
                state, next_at = "queued", self.clock() + self.backoff_s * 2**item.attempts
            elif retry:
                state = "failed"
            try:
                settle(
                    self.db,
                    item,
                    state,
                    outcome,
                    self._delivered(f"webhook {outcome}" + (" (will retry)" if state == "queued" else "")),
                    next_at,
                )
            except Exception as exc:
                log.warning(
                    "alert webhook: could not record the delivery of alert %s (%s)", item.alert_id, redact_text(exc)
                )
            if state != "delivered":
                log.warning("alert webhook %s, alert %s: %s", redact_url(self.webhook), item.alert_id, outcome)

    def _attempt(self, item: OutboxItem) -> tuple[str, str, bool]:
        """One POST: ``(state, outcome, retry)``; never raises."""
        try:
            return asyncio.run(asyncio.wait_for(self._post(item), self.timeout_s))
        except (asyncio.TimeoutError, httpx.TimeoutException):
            return "unknown", f"no reply within {self.timeout_s:g} s; not sent again (it may have arrived)", False
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            return "failed", f"failed (cannot connect: {redact_text(exc) or type(exc).__name__})", True
        except httpx.TransportError as exc:  # dropped after the request went out
            return (
                "unknown",
                (f"failed ({redact_text(exc) or type(exc).__name__}); not sent again (it may have arrived)"),
                False,
            )
        except Exception as exc:  # a URL httpx refuses, anything else: recorded, the poster lives on
            return "failed", f"failed ({type(exc).__name__}: {redact_text(exc)})", False

    async def _post(self, item: OutboxItem) -> tuple[str, str, bool]:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "reid-app",
            "Idempotency-Key": f"reid-app-alert-{item.alert_id}",
        }
        async with httpx.AsyncClient(follow_redirects=False, timeout=self.timeout_s, trust_env=False) as client:
            url, auth = self._target
            response = await client.post(url, content=item.body.encode("utf-8"), headers=headers, auth=auth)
        status = response.status_code
        if 200 <= status < 300:
            return "delivered", str(status), False
        if 300 <= status < 400:
            where = redact_url(response.headers.get("location", "?"))
            return "failed", f"{status} (redirect to {where} not followed)", False
        return "failed", str(status), status >= 500 or status == 429


def webhook_target(webhook: str) -> tuple[httpx.URL, Optional[httpx.BasicAuth]]:
    """The URL to POST to and the basic-auth credentials of ``webhook`` (its userinfo as
    ``common.redaction.split_userinfo`` finds it, percent-escapes decoded).

    Raises:
        UsageError: not an http(s) URL with a host; the message shows the URL redacted and never a part of the
            credentials.
    """
    scheme, userinfo, rest = split_userinfo(webhook)
    if scheme.lower() not in ("http://", "https://"):
        raise UsageError(f"webhook must be an http:// or https:// URL, got {redact_url(webhook)}")
    auth = None
    if userinfo is not None:
        user, _, password = userinfo.partition(":")
        auth = httpx.BasicAuth(unquote(user), unquote(password))
    try:
        url = httpx.URL(scheme + rest)
        if not url.host:
            raise ValueError("no host")
    except Exception as exc:
        raise UsageError(
            f"webhook {redact_url(webhook)} is not a valid URL ({redact_text(exc)}); give "
            f"http(s)://[user:password@]host[:port]/path"
        ) from None
    return url, auth
