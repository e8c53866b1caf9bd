"""The platform and canary web origins: one nginx per lab, configured from the topology data.

Each site of ``censornet.topology.SITES`` gets one nginx virtual server on every address of the
site, port 80 and 443, presenting the site's lab-CA certificate for its names. What a site's
addresses say to a name they do not host is a lab setting (``UnknownSni``), one of the three
answers real origins give:

- ``default-cert``: nginx's default server with a certificate for another name (most origins);
- ``own-cert``: the site's own certificate, whatever name was asked (many platform fronts);
- ``alert``: a TLS alert, ``unrecognized_name`` (``ssl_reject_handshake on``; many CDN fronts).

Never a valid certificate for the name asked. The web policy of a scenario (``http503``, ``slow``,
``close``) is rendered into the same configuration; ``OriginServer.reload`` re-renders it and
waits until nginx's workers answer with the new generation on a control socket in the state
directory, reachable without entering the lab's namespaces.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from censornet import content, topology
from censornet.netns import LabError, Mode
from censornet.pki import ORIGIN_DEFAULT_LABEL, pki_paths, site_san_names
from censornet.policy import Policy, WebRule, name_matches
from censornet.servers import pages

UnknownSni = Literal["default-cert", "own-cert", "alert"]
UNKNOWN_SNI_BEHAVIOURS: tuple[UnknownSni, ...] = get_args(UnknownSni)
DEFAULT_UNKNOWN_SNI: UnknownSni = "default-cert"
UNKNOWN_SNI_ENV = "BLOCKPROBE_LAB_UNKNOWN_SNI"
# Sites whose port 80 redirects to https like the real ones; the others answer on http too.
HTTPS_ONLY_SITES = frozenset(set(topology.SITES) - {"example", "wikipedia"})
RELOAD_TIMEOUT = 10.0
NGINX = "nginx"


@dataclass(frozen=True)
class OriginSettings:
    """How the origins answer names they do not host: one behaviour, or one per site."""

    unknown_sni: UnknownSni = DEFAULT_UNKNOWN_SNI
    per_site: tuple[tuple[str, UnknownSni], ...] = ()

    def for_site(self, site: str) -> UnknownSni:
        """The behaviour of ``site``'s addresses for an unknown SNI."""
        return dict(self.per_site).get(site, self.unknown_sni)

    @classmethod
    def parse(cls, spec: str) -> OriginSettings:
        """``BEHAVIOUR`` or ``BEHAVIOUR,SITE=BEHAVIOUR,...`` (raises ValueError naming choices)."""
        default: UnknownSni = DEFAULT_UNKNOWN_SNI
        per_site: list[tuple[str, UnknownSni]] = []
        for part in (p.strip() for p in spec.split(",") if p.strip()):
            site, _, value = part.rpartition("=")
            behaviour = _behaviour(value)
            if not site:
                default = behaviour
            elif site not in topology.SITES:
                raise ValueError(f"unknown site {site!r}; known: {', '.join(topology.SITES)}")
            else:
                per_site.append((site, behaviour))
        return cls(unknown_sni=default, per_site=tuple(per_site))

    @classmethod
    def from_env(cls) -> OriginSettings:
        """The settings named by ``BLOCKPROBE_LAB_UNKNOWN_SNI`` (default: default-cert)."""
        return cls.parse(os.environ.get(UNKNOWN_SNI_ENV, DEFAULT_UNKNOWN_SNI))

    def to_json(self) -> dict[str, object]:
        """A JSON-able form (``lab.json``, ``lab status``)."""
        return {"unknown_sni": self.unknown_sni, "per_site": dict(self.per_site)}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> OriginSettings:
        """The inverse of ``to_json``."""
        per_site = data.get("per_site") or {}
        assert isinstance(per_site, dict)
        return cls(
            unknown_sni=_behaviour(str(data.get("unknown_sni", DEFAULT_UNKNOWN_SNI))),
            per_site=tuple((str(k), _behaviour(str(v))) for k, v in per_site.items()),
        )


def _behaviour(value: str) -> UnknownSni:
    for known in UNKNOWN_SNI_BEHAVIOURS:
        if value == known:
            return known
    raise ValueError(
        f"unknown-SNI behaviour {value!r}: use one of {', '.join(UNKNOWN_SNI_BEHAVIOURS)}"
    )


def site_ips(site: str) -> tuple[str, ...]:
    """Every address serving ``site`` (X's CDN alternative address serves x)."""
    ips = {ip for name in topology.SITES[site] for ip in topology.ZONE.get(name, ())}
    if site == "x":
        ips.add(topology.X_CDN_ALT_IP)
    return tuple(sorted(ips, key=lambda ip: tuple(int(p) for p in ip.split("."))))


def _both(ips: tuple[str, ...]) -> tuple[str, ...]:
    """``ips`` and their IPv6 twins, as nginx ``listen`` addresses."""
    return (*ips, *(f"[{topology.ipv6_of(ip)}]" for ip in ips))


def nginx_available() -> bool:
    """Whether the nginx binary is on PATH."""
    return shutil.which(NGINX) is not None


class OriginServer:
    """The nginx of one lab: its configuration, its control socket, its reloads."""

    def __init__(self, state_dir: Path, mode: Mode) -> None:
        self.state_dir = state_dir
        self.mode = mode
        self.directory = state_dir / "nginx"
        self.conf = self.directory / "nginx.conf"
        self.control_socket = self.directory / "control.sock"
        try:
            self.generation = int((self.directory / "generation").read_text())
        except (FileNotFoundError, ValueError):
            self.generation = 0

    def prepare(self, settings: OriginSettings, policy: Policy) -> list[str]:
        """Write the content tree and the first configuration; the argv that runs nginx."""
        if not nginx_available():
            raise LabError("the lab's web origins need nginx (Debian: apt-get install nginx-light)")
        for sub in ("", "temp", "logs"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        content.write_tree(self.state_dir / "www")
        self._write(settings, policy)
        return [NGINX, "-p", str(self.directory), "-c", str(self.conf), "-e", "stderr"]

    def wait_ready(self, deadline: float, alive: object) -> None:
        """Wait until nginx answers on its control socket with the current generation."""
        self._await_generation(deadline, alive)

    def reload(self, master_pid: int, settings: OriginSettings, policy: Policy) -> None:
        """Re-render the configuration and have nginx (``master_pid``) load it; wait for it."""
        self._write(settings, policy)
        os.kill(master_pid, signal.SIGHUP)
        self._await_generation(time.monotonic() + RELOAD_TIMEOUT, None)

    # --- internals ------------------------------------------------------------------------

    def _write(self, settings: OriginSettings, policy: Policy) -> None:
        self.generation += 1
        text = render(self.state_dir, self.mode, settings, policy, self.generation)
        tmp = self.conf.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.conf)
        (self.directory / "generation").write_text(f"{self.generation}\n")

    def _await_generation(self, deadline: float, alive: object) -> None:
        wanted = str(self.generation)
        streak = 0
        while True:
            seen = control_generation(self.control_socket)
            streak = streak + 1 if seen == wanted else 0
            if streak >= 3:  # three answers in a row: the old workers have stopped accepting
                return
            if callable(alive) and not alive():
                raise LabError("nginx (the lab's web origins) exited during start")
            if time.monotonic() > deadline:
                errors = self.state_dir / "logs" / "nginx-error.log"
                tail = errors.read_text()[-800:] if errors.exists() else ""
                raise LabError(f"nginx did not load origin configuration {wanted} in time:\n{tail}")
            time.sleep(0.02 if streak else 0.05)


def control_generation(path: Path) -> str | None:
    """The configuration generation nginx answers on its control socket (None: no answer)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            sock.connect(str(path))
            sock.sendall(b"GET /generation HTTP/1.0\r\nHost: control\r\n\r\n")
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
    except OSError:
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        return None
    return body.decode(errors="replace").strip()


# --- rendering ------------------------------------------------------------------------------


def render(
    state_dir: Path, mode: Mode, settings: OriginSettings, policy: Policy, generation: int
) -> str:
    """The whole nginx.conf of a lab."""
    pki = pki_paths(state_dir)
    nginx_dir = state_dir / "nginx"
    www = state_dir / "www"
    # Workers keep the master's user: rootless, only uid 0 of the user namespace is mapped, and
    # the state directory may be private to its owner (a test's temporary directory).
    user = "root root"
    lines = [
        "# Generated by censornet.origins for this lab; rewritten on every scenario switch.",
        f"user {user};",
        "daemon off;",
        "master_process on;",
        "worker_processes auto;",  # one per CPU, as packaged nginx does
        f"pid {nginx_dir / 'nginx.pid'};",
        f"error_log {state_dir / 'logs' / 'nginx-error.log'} warn;",
        "load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;",
        "events { worker_connections 1024; }",
        "http {",
        "  include /etc/nginx/mime.types;",
        "  default_type application/octet-stream;",
        f"  access_log {state_dir / 'logs' / 'nginx-access.log'};",
        "  sendfile on;",
        "  tcp_nopush on;",
        "  keepalive_timeout 75s;",
        "  keepalive_requests 1000;",
        "  server_tokens off;",
        "  client_max_body_size 16m;",
        "  client_body_buffer_size 1m;",
        *(
            f"  {kind}_temp_path {nginx_dir / 'temp' / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        ),
        "  ssl_protocols TLSv1.2 TLSv1.3;",
        "  ssl_session_cache shared:labtls:1m;",
        "",
        "  # The lab's control socket: which configuration generation the workers run.",
        "  server {",
        f"    listen unix:{nginx_dir / 'control.sock'};",
        f'    location = /generation {{ default_type text/plain; return 200 "{generation}\\n"; }}',
        "    location / { return 404; }",
        "  }",
    ]
    for site in topology.SITES:
        lines += _site_servers(site, settings.for_site(site), policy, pki, www)
    lines += _blockpage_server(pki)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _site_servers(
    site: str, unknown_sni: UnknownSni, policy: Policy, pki: object, www: Path
) -> list[str]:
    from censornet.pki import Pki

    assert isinstance(pki, Pki)
    ips = site_ips(site)
    own_cert, own_key = pki.cert(site), pki.key(site)
    out = ["", f"  # ---- {site}: {', '.join(ips)} (unknown SNI: {unknown_sni})"]
    # The default servers: what these addresses say to a name they do not host.
    out.append("  server {")
    out += [f"    listen {ip}:80 default_server;" for ip in _both(ips)]
    out += [f"    listen {ip}:443 ssl http2 default_server;" for ip in _both(ips)]
    if unknown_sni == "alert":
        out.append("    ssl_reject_handshake on;")
    else:
        cert_label = site if unknown_sni == "own-cert" else ORIGIN_DEFAULT_LABEL
        out.append(f"    ssl_certificate {pki.cert(cert_label)};")
        out.append(f"    ssl_certificate_key {pki.key(cert_label)};")
    out.append(f"    root {www / content.DEFAULT_ROOT};")
    out.append("    location / { return 404; }")
    out.append("  }")
    # The site's own names, grouped by the web rule that applies to them.
    for rule, names in _names_by_rule(site, policy.web):
        out.append("  server {")
        out += [f"    listen {ip}:80;" for ip in _both(ips)]
        out += [f"    listen {ip}:443 ssl http2;" for ip in _both(ips)]
        out.append(f"    server_name {' '.join(names)};")
        out.append(f"    ssl_certificate {own_cert};")
        out.append(f"    ssl_certificate_key {own_key};")
        out.append(f"    root {www / site};")
        out.append("    index index.html;")
        out += _site_locations(site, rule, www)
        out.append("  }")
    return out


def _blockpage_server(pki: object) -> list[str]:
    """The regulator's notice on the blockpage address: any path, http and (self-signed) https;
    ``?host=`` names the blocked host, else the Host header does."""
    from censornet.pki import SELF_SIGNED_LABEL, Pki

    assert isinstance(pki, Pki)
    notice = pages.blockpage("$blocked")
    if "'" in notice or "\\" in notice:
        raise ValueError("the blockpage text cannot be quoted for nginx")
    return [
        "",
        f"  # ---- the regulator's blockpage server: {topology.BLOCKPAGE_IP}",
        "  server {",
        f"    listen {topology.BLOCKPAGE_IP}:80;",
        f"    listen {topology.BLOCKPAGE_IP}:443 ssl;",
        f"    listen [{topology.ipv6_of(topology.BLOCKPAGE_IP)}]:80;",
        f"    listen [{topology.ipv6_of(topology.BLOCKPAGE_IP)}]:443 ssl;",
        f"    ssl_certificate {pki.self_signed_cert};",
        f"    ssl_certificate_key {pki.key(SELF_SIGNED_LABEL)};",
        "    location / {",
        "      set $blocked $arg_host;",
        '      if ($blocked = "") { set $blocked $host; }',
        "      default_type text/html;",
        "      add_header Cache-Control no-store;",
        f"      return 200 '{notice}';",
        "    }",
        "  }",
    ]


def _names_by_rule(
    site: str, rules: Iterable[WebRule]
) -> list[tuple[WebRule | None, tuple[str, ...]]]:
    """The site's server names (wildcards as ``*.parent``), grouped by the first rule matching."""
    rules = tuple(rules)
    groups: dict[WebRule | None, list[str]] = {}
    for name in site_san_names(topology.SITES[site]):
        bare = name.removeprefix("*.")
        rule = next((r for r in rules if name_matches(bare, r.suffix)), None)
        groups.setdefault(rule, []).append(name)
    return [(rule, tuple(names)) for rule, names in groups.items()]


def _site_locations(site: str, rule: WebRule | None, www: Path) -> list[str]:
    mode = rule.mode if rule is not None else "ok"
    if mode == "close":
        return ["    location / { return 444; }"]  # close without an answer
    if mode == "http503":
        return [
            "    error_page 503 /_outage.html;",
            f"    location = /_outage.html {{ internal; root {www / content.DEFAULT_ROOT}; }}",
            "    location / { return 503; }",
        ]
    redirect = site in HTTPS_ONLY_SITES
    serve = [
        # An upload endpoint, as real ones are: reads the whole body, then answers 200 (a
        # ``return`` would answer at once and discard the body while the client still sends).
        "      if ($request_method = POST) {",
        "        echo_read_request_body;",
        "        echo '{\"received\": true}';",
        "      }",
        f"      try_files $uri $uri/ /{content.LARGE_OBJECT};",
        "      add_header Cache-Control no-store;",
    ]
    if redirect:
        serve.insert(0, "      if ($scheme = http) { return 301 https://$host$request_uri; }")
    out: list[str] = []
    if mode == "slow":
        assert rule is not None
        # The backend takes this long to answer: the first byte waits, then the site as usual.
        out.append(f"    location / {{ echo_sleep {rule.delay_ms / 1000:.3f}; echo_exec @site; }}")
        out.append("    location = /index.html { add_header Cache-Control no-store; }")
        out.append("    location @site {")
    else:
        out.append("    location / {")
    out += serve
    out.append("    }")
    return out


def write_state(state_dir: Path, settings: OriginSettings) -> None:
    """Record the origin settings in force (``origins.json`` in the state directory)."""
    path = state_dir / "origins.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(settings.to_json()) + "\n")
    os.replace(tmp, path)


def read_state(state_dir: Path) -> OriginSettings:
    """The origin settings of a running lab (defaults when none were recorded)."""
    try:
        return OriginSettings.from_json(json.loads((state_dir / "origins.json").read_text()))
    except (FileNotFoundError, ValueError):
        return OriginSettings()
