"""A local HTTP site on 127.0.0.1 for daemon tests and benchmarks: a page, and a large object.

``/big...`` streams ``big_bytes``; any other path answers the small ``page``. Clients that hang up
mid-transfer (throughput caps) are expected and not reported.
"""

from __future__ import annotations

import http.server
import threading


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up mid-transfer (throughput caps) are expected


def start_local_site(*, big_bytes: int, page: bytes) -> http.server.ThreadingHTTPServer:
    """Serve the site from a background thread; stop it with ``shutdown()``, ``server_close()``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.startswith("/big"):
                chunk = b"x" * 65536
                self.send_response(200)
                self.send_header("Content-Length", str(big_bytes))
                self.end_headers()
                try:
                    for _ in range(big_bytes // len(chunk)):
                        self.wfile.write(chunk)
                except OSError:
                    pass
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

    server = _Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
