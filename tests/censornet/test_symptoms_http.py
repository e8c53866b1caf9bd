"""censornet.symptoms' HTTP client (h11) against a real local HTTP/1.1 server: a page, a ranged
download, an upload answered by the server, and a peer that is not HTTP."""

from __future__ import annotations

import socket
import threading

from censornet import symptoms
from tests.local_site import start_local_site

PAGE = b"<html><title>Hello &amp; welcome</title>" + b"x" * 5000 + b"</html>"


def test_page_download_and_upload_over_http() -> None:
    """Status, title, whole body; a download counts its bytes; an upload gets the server's 501."""
    server = start_local_site(big_bytes=1 << 20, page=PAGE)
    url = f"http://site.test:{server.server_address[1]}"
    try:
        page = symptoms.http_get(url + "/", ip="127.0.0.1")
        down = symptoms.rate(url + "/big.bin", ip="127.0.0.1", nbytes=256 * 1024)
        up = symptoms.rate(url + "/up", ip="127.0.0.1", nbytes=16 * 1024, upload=True)
    finally:
        server.shutdown()
        server.server_close()
    assert (200, "done", len(PAGE)) == (page.status, page.stage, page.bytes)
    assert "Hello & welcome" == page.title
    assert (200, "complete") == (down.status, down.outcome) and down.bytes >= 256 * 1024
    assert 501 == up.status  # http.server has no do_POST: a real answer, parsed


def test_a_peer_that_is_not_http_is_named() -> None:
    """A reply that is no HTTP response is reported as such, not as a page."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        result = symptoms.http_get(f"http://x.test:{listener.getsockname()[1]}/", ip="127.0.0.1")
    finally:
        thread.join(5)
        listener.close()
    assert "eof" == result.outcome and result.status is None
    assert result.error and "not an HTTP response" in result.error
