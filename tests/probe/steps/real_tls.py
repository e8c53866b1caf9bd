"""Real TLS server software on loopback, answering a name it does not host as real servers do.

- ``OpenSSLServer``: Python's ``ssl`` (OpenSSL) on a blocking socket in a thread, one handshake
  per connection, refusing unknown names with a chosen TLS alert from its SNI callback (as CDN
  fronts answer ``unrecognized_name`` or ``handshake_failure``), or presenting its one certificate
  for any name (a platform server with a catch-all certificate).
- ``Nginx``: the nginx binary with a generated configuration: one port whose default server
  rejects unknown names (``ssl_reject_handshake on``: the ``unrecognized_name`` alert), one port
  whose only server presents its certificate, for another name, to every SNI (nginx's default
  server). Stopped by its PID.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType

import trustme

from tests.probe.steps.servers import LOOPBACK, free_port


class OpenSSLServer:
    """A TLS server for ``hosted`` names; any other SNI gets ``alert`` (None: the certificate)."""

    def __init__(self, ca: trustme.CA, hosted: str, alert: ssl.AlertDescription | None) -> None:
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(hosted).configure_cert(self._context)
        self._hosted = hosted
        self._alert = alert
        self._listener = socket.create_server((LOOPBACK, 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self.errors: list[str] = []  # the server side's own view of each failed handshake
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        if alert is not None:
            self._context.sni_callback = self._choose

    def _choose(self, _obj: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> int | None:
        return None if name == self._hosted else self._alert

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    with self._context.wrap_socket(conn, server_side=True) as tls:
                        tls.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
                except (ssl.SSLError, OSError) as exc:
                    self.errors.append(str(exc))

    def __enter__(self) -> OpenSSLServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()


NGINX_CONF = """
daemon off;
master_process off;
pid {root}/nginx.pid;
error_log {root}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    server {{
        listen {host}:{reject_port} ssl default_server;
        ssl_reject_handshake on;
    }}
    server {{
        listen {host}:{reject_port} ssl;
        server_name {hosted};
        ssl_certificate {root}/cert.pem;
        ssl_certificate_key {root}/key.pem;
        return 204;
    }}
    server {{
        listen {host}:{default_port} ssl default_server;
        server_name {hosted};
        ssl_certificate {root}/cert.pem;
        ssl_certificate_key {root}/key.pem;
        return 204;
    }}
}}
"""


class Nginx:
    """nginx hosting ``hosted``: ``reject_port`` alerts other names, ``default_port`` serves its
    certificate to every name."""

    def __init__(self, ca: trustme.CA, hosted: str, root: Path) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.root = root
        cert = ca.issue_cert(hosted)
        cert.cert_chain_pems[0].write_to_path(str(root / "cert.pem"))
        cert.private_key_pem.write_to_path(str(root / "key.pem"))
        self.reject_port, self.default_port = free_port(), free_port()
        conf = root / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                root=root,
                host=LOOPBACK,
                hosted=hosted,
                reject_port=self.reject_port,
                default_port=self.default_port,
            )
        )
        log = (root / "stderr.log").open("wb")
        argv = [binary, "-p", str(root), "-c", str(conf), "-e", str(root / "error.log")]
        self._proc = subprocess.Popen(argv, stdout=log, stderr=log)
        log.close()

    def __enter__(self) -> Nginx:
        deadline = time.monotonic() + 10
        for port in (self.reject_port, self.default_port):
            while True:
                try:
                    socket.create_connection((LOOPBACK, port), timeout=0.5).close()
                    break
                except OSError:
                    if self._proc.poll() is not None or time.monotonic() > deadline:
                        self.__exit__(None, None, None)
                        raise RuntimeError(self.log()) from None
                    time.sleep(0.05)
        return self

    def log(self) -> str:
        """nginx's error log and stderr, for a failed start."""
        return "\n".join(
            p.read_text(errors="replace")
            for p in (self.root / "error.log", self.root / "stderr.log")
            if p.exists()
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
