"""DNS-over-HTTPS (RFC 8484) for the control resolver: GET ``?dns=`` and POST dns-message."""

from __future__ import annotations

import asyncio
import base64
import binascii
from urllib.parse import parse_qs

from censornet.servers.dnsserver import Answerer, answer_wire
from censornet.servers.http import HttpRequest, HttpResponse
from censornet.servers.web import ConnectionInfo, Responder

DOH_PATH = "/dns-query"
DNS_MESSAGE = "application/dns-message"
DROP_HOLD = 30.0  # a dropped query: hold the request this long, then close without answering


def doh_app(answer: Answerer) -> Responder:
    """A responder that serves DNS queries at ``/dns-query`` with ``answer``."""

    async def respond(request: HttpRequest, conn: ConnectionInfo) -> HttpResponse | None:
        if request.path != DOH_PATH:
            return HttpResponse.html(404, "<html><body>Not found</body></html>")
        if request.method == "POST":
            if request.headers.get("content-type", "").split(";")[0].strip() != DNS_MESSAGE:
                return HttpResponse.html(
                    415, "<html><body>Use application/dns-message</body></html>"
                )
            wire = request.body
        elif request.method in ("GET", "HEAD"):
            encoded = parse_qs(request.query).get("dns", [""])[0]
            try:
                wire = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            except (binascii.Error, ValueError):
                wire = b""
        else:
            return HttpResponse(405, (("Allow", "GET, POST"),))
        if len(wire) < 12:
            return HttpResponse.html(400, "<html><body>Bad DNS query</body></html>")
        data = await answer_wire(wire, answer)
        if data is None:
            await asyncio.sleep(DROP_HOLD)
            return None
        headers = (("Content-Type", DNS_MESSAGE), ("Cache-Control", "max-age=0"))
        return HttpResponse(200, headers, data)

    return respond
