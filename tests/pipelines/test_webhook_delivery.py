"""Webhook delivery against real receivers on loopback: credentials in the URL (with a port) are sent as basic auth
and never shown; a slow receiver gets an alert once; a slow-drip reply is cut at the total timeout; redirects are
not followed; server errors are retried with backoff; the outbox survives a restart and sends nothing twice."""

from __future__ import annotations

import base64
import logging
import time

import pytest
from sqlalchemy import text

from pipelines.live.watchlist import AlertDispatcher, load_matcher, watch_track
from storage.watchlist import list_alerts
from tests.factories import track_update as _update
from tests.factories import two_people as _two_people
from tests.webhook import DripReceiver, WebhookReceiver


@pytest.fixture
def db(site_db):
    """The synthetic two-camera site (``site_db``)."""
    return site_db


def _alert(db, dispatcher, timestamp=1000.0):
    watched, same, _ = _two_people(db)
    watch_track(db, watched, "suspect")
    return dispatcher.raise_alerts(load_matcher(db, 0.75).check("cam1", [_update(db, same, timestamp)]))


def _outbox(db):
    with db.engine.connect() as con:
        return [tuple(r) for r in con.execute(text("SELECT alert_id, state, attempts, outcome FROM webhook_outbox"))]


def test_credentials_in_a_webhook_url_with_a_port_are_sent_as_basic_auth_and_never_shown(db, caplog):
    receiver = WebhookReceiver()
    url = receiver.url.replace("http://", "http://alice:s3cr#t@")
    with caplog.at_level(logging.DEBUG):
        dispatcher = AlertDispatcher(db, url, timeout_s=3.0)
        payloads = _alert(db, dispatcher)
        assert dispatcher.close() == 0
    receiver.close()
    assert [body for _, body in receiver.received] == payloads
    assert receiver.headers[0]["Authorization"] == "Basic " + base64.b64encode(b"alice:s3cr#t").decode()
    (alert,) = list_alerts(db)
    assert alert.delivered == "webhook 200"
    assert "s3cr" not in caplog.text
    with db.engine.connect() as con:  # nothing stored anywhere holds the password
        dump = "\n".join(con.connection.iterdump())
    assert "s3cr" not in dump


def test_a_receiver_slower_than_the_timeout_gets_the_alert_once(db):
    receiver = WebhookReceiver(delay_s=2.0)
    dispatcher = AlertDispatcher(db, receiver.url, timeout_s=0.5, attempts=3, backoff_s=0.05)
    (payload,) = _alert(db, dispatcher)
    time.sleep(1.5)
    dispatcher.close(wait_s=2.0)
    receiver.close()
    assert len(receiver.received) == 1
    assert receiver.headers[0]["Idempotency-Key"] == f"reid-app-alert-{payload['alert_id']}"
    ((_, state, attempts, outcome),) = _outbox(db)
    assert (state, attempts) == ("unknown", 1) and "no reply within 0.5 s" in outcome
    assert list_alerts(db)[0].delivered.startswith("webhook no reply within 0.5 s")


def test_a_slow_drip_reply_is_cut_at_the_total_timeout(db):
    drip = DripReceiver(every_s=0.1)
    dispatcher = AlertDispatcher(db, drip.url, timeout_s=1.0, attempts=3, backoff_s=0.05)
    started = time.monotonic()
    _alert(db, dispatcher)
    while _outbox(db)[0][1] in ("queued", "sending") and time.monotonic() - started < 10:
        time.sleep(0.05)
    took = time.monotonic() - started
    dispatcher.close(wait_s=0.5)
    drip.close()
    assert took < 4.0 and _outbox(db)[0][1] == "unknown" and drip.requests == 1


def test_a_redirect_is_not_followed_and_stored_as_what_it_was(db):
    elsewhere = WebhookReceiver()
    receiver = WebhookReceiver(status=302, headers={"Location": elsewhere.url.replace("http://", "http://u:pw@")})
    dispatcher = AlertDispatcher(db, receiver.url, timeout_s=2.0)
    _alert(db, dispatcher)
    dispatcher.close()
    receiver.close()
    elsewhere.close()
    assert len(receiver.received) == 1 and elsewhere.received == []
    delivered = list_alerts(db)[0].delivered
    assert delivered.startswith("webhook 302 (redirect to http://***@127.0.0.1") and "not followed" in delivered
    assert _outbox(db)[0][1] == "failed"


def test_server_errors_are_retried_with_backoff_then_delivered_once(db):
    receiver = WebhookReceiver(statuses=[500, 503, 200])
    dispatcher = AlertDispatcher(db, receiver.url, timeout_s=2.0, attempts=5, backoff_s=0.2)
    _alert(db, dispatcher)
    dispatcher.close(wait_s=5.0)
    receiver.close()
    assert len(receiver.received) == 3
    gaps = [b - a for a, b in zip(receiver.times, receiver.times[1:])]
    assert gaps[0] >= 0.18 and gaps[1] >= 0.38  # 0.2 s, then doubled
    assert _outbox(db)[0][1:3] == ("delivered", 3) and list_alerts(db)[0].delivered == "webhook 200"


def test_the_outbox_survives_a_restart_and_what_is_queued_at_stop_is_said(db, caplog):
    down = WebhookReceiver()
    url = down.url
    down.close()  # nothing listens: the first attempts cannot connect
    dispatcher = AlertDispatcher(db, url, timeout_s=1.0, attempts=5, backoff_s=30.0)
    _alert(db, dispatcher)
    with caplog.at_level(logging.WARNING):
        assert dispatcher.close(wait_s=0.5) == 1
    assert "1 alert(s) not yet delivered" in caplog.text
    ((alert_id, state, attempts, _),) = _outbox(db)
    assert (state, attempts) == ("queued", 1)
    # the next watch (its receiver up now) sends it once its backoff is over, and only it
    again = WebhookReceiver()
    restarted = AlertDispatcher(db, again.url, timeout_s=1.0, backoff_s=30.0, clock=lambda: time.time() + 60.0)
    assert restarted.close(wait_s=3.0) == 0
    again.close()
    assert [body["alert_id"] for _, body in again.received] == [alert_id]
    assert _outbox(db)[0][1:3] == ("delivered", 2)


def test_a_post_interrupted_by_a_dead_process_is_never_sent_again(db):
    receiver = WebhookReceiver()
    _alert(db, AlertDispatcher(db))
    (alert,) = list_alerts(db)
    with db.engine.begin() as con:  # what a watch killed mid-POST leaves behind
        con.execute(
            text(
                "INSERT INTO webhook_outbox (alert_id, body, state, attempts, next_attempt_at, outcome) "
                "VALUES (:a, '{}', 'sending', 0, 0, '')"
            ),
            {"a": alert.id},
        )
    restarted = AlertDispatcher(db, receiver.url, timeout_s=1.0)
    restarted.close(wait_s=1.0)
    receiver.close()
    assert receiver.received == [] and _outbox(db)[0][1] == "unknown"
    assert "interrupted" in list_alerts(db)[0].delivered


@pytest.mark.parametrize("url", ["ftp://host/x", "http://user:pw@/nohost"])
def test_a_bad_webhook_url_is_refused_without_its_password(db, url):
    from common.errors import UsageError

    with pytest.raises(UsageError) as raised:
        AlertDispatcher(db, url)
    assert "pw" not in str(raised.value)
