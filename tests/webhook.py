"""A local HTTP server that records every JSON POST it receives (a webhook receiver for the alert tests)."""

from __future__ import annotations

import http.server
import json
import threading


class WebhookReceiver:
    """Listens on loopback at :attr:`url` (path ``/hooks/reid``), answers each POST with ``status`` and keeps
    ``(path, JSON body)`` in :attr:`received`; :meth:`close` stops it."""

    def __init__(self, status: int = 200):
        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                received.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *_):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/reid"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
