"""A local HTTP server that records every JSON POST it receives (a webhook receiver for the alert tests)."""

from __future__ import annotations

import http.server
import json
import threading
import time
from typing import Optional, Sequence


class WebhookReceiver:
    """Listens on loopback at :attr:`url` (path ``/hooks/reid``), answers each POST with the next of ``statuses``
    (the last one repeats) after ``delay_s`` seconds, with ``headers``, and keeps ``(path, JSON body)`` in
    :attr:`received`, the request headers in :attr:`headers` and the arrival times in :attr:`times`; :meth:`close`
    stops it."""

    def __init__(
        self,
        status: int = 200,
        statuses: Optional[Sequence[int]] = None,
        delay_s: float = 0.0,
        headers: Optional[dict] = None,
    ):
        received, seen, times = self.received, self.headers, self.times = [], [], []
        answers = list(statuses or [status])

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                times.append(time.monotonic())
                seen.append(dict(self.headers))
                received.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
                time.sleep(delay_s)
                code = answers.pop(0) if len(answers) > 1 else answers[0]
                try:
                    self.send_response(code)
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the client gave up waiting
                    pass

            def log_message(self, *_):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}/hooks/reid"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class DripReceiver:
    """A receiver that reads the request and then answers one byte every ``every_s`` seconds, forever (a slow-drip
    response that never ends); :attr:`requests` counts the connections."""

    def __init__(self, every_s: float = 0.2):
        import socket

        self.requests = 0
        self._stop = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"

        def serve():
            while not self._stop.is_set():
                try:
                    conn, _ = self.sock.accept()
                except OSError:
                    return
                self.requests += 1
                threading.Thread(target=drip, args=(conn,), daemon=True).start()

        def drip(conn):
            conn.recv(65536)
            try:
                for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100000:
                    if self._stop.is_set():
                        break
                    conn.send(bytes([byte]))
                    time.sleep(every_s)
            except OSError:
                pass
            conn.close()

        threading.Thread(target=serve, daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
