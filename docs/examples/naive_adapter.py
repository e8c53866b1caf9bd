#!/usr/bin/env python3
"""Adapter: naive_checker.sh's tab-separated lines on stdin -> verdict contract JSON lines.

An adapter is the only piece another tool needs to be scored by `blockprobe lab check`: it reads
the tool's own output and prints, per endpoint, {"target", "verdict", "method"} in the contract's
vocabulary (one JSON object a line). This one maps the checker's DNS status, curl exit code and
HTTP status, with no control to tell censorship from an outage: exactly as naive as its input.
Python standard library only.
"""

from __future__ import annotations

import ipaddress
import json
import sys

# The addresses resolvers answer when they lie with a "bogon" (not the lab's own 198.18.0.0/15).
BOGONS = [
    ipaddress.ip_network(n)
    for n in ("0.0.0.0/8", "10.0.0.0/8", "127.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
]
DNS_STATUS = {
    "NXDOMAIN": "dns.nxdomain",
    "SERVFAIL": "dns.servfail",
    "REFUSED": "dns.refused",
    "TIMEOUT": "dns.timeout",
}
# curl exit codes: https://curl.se/libcurl/c/libcurl-errors.html
CURL_EXIT = {7: "tcp.reset", 35: "tls.reset", 60: "tls.mitm", 52: "http.eof", 56: "http.reset"}


def verdict(fields: list[str]) -> tuple[str, str | None, str]:
    """(verdict, method, evidence) for one line of the checker's output."""
    url, status = fields[0], fields[1]
    if status != "NOERROR":
        method = DNS_STATUS.get(status)
        return ("blocked", method, f"DNS {status}") if method else ("inconclusive", None, status)
    address, exit_code, http_code, connect, appconnect = fields[2:7]
    if any(ipaddress.ip_address(address) in net for net in BOGONS):
        return "blocked", "dns.bogon", f"DNS answered {address}"
    code = int(exit_code)
    in_handshake = url.startswith("https") and float(appconnect) == 0
    if code == 28:  # a timeout: the stage it happened at gives the method
        stage = "tcp" if float(connect) == 0 else "tls" if in_handshake else "http"
        return "blocked", f"{stage}.timeout", f"curl timed out ({stage})"
    if code == 56 and in_handshake:
        return "blocked", "tls.reset", "connection reset during the TLS handshake"
    if code in CURL_EXIT:
        return "blocked", CURL_EXIT[code], f"curl exit {code}"
    if code != 0:
        return "inconclusive", None, f"curl exit {code}"
    if http_code in ("403", "451"):
        return "blocked", "http.blockpage", f"HTTP {http_code}"
    return "reachable", None, f"HTTP {http_code} from {address}"


def main() -> int:
    for line in sys.stdin:
        fields = line.rstrip("\n").split("\t")
        if len(fields) < 7:
            continue
        result, method, evidence = verdict(fields)
        print(
            json.dumps(
                {"target": fields[0], "verdict": result, "method": method, "evidence": [evidence]}
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
