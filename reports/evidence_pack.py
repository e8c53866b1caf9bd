"""Evidence packs: an incident's signed bundles with everything needed to check them offline.

``write_pack`` asks a collector's API (a running one, or one opened in-process on its data
directory) and writes::

    DIR/README.md               how to verify, in words
    DIR/incident.json           the incident, as the report API gives it
    DIR/checkpoint.json         the log's signed checkpoint (C2SP note) and the log's public key
    DIR/keys/KEY_ID.json        the enrolled public key of each probe that signed a bundle
    DIR/bundles/DIGEST.json     each bundle's DSSE envelope, as stored
    DIR/proofs/DIGEST.json      its inclusion proof against the checkpoint
    DIR/bundles/DIGEST.html     a readable page of each bundle (and DIGEST/N.html per measurement)

``probe.evidence.pack.verify_pack`` (``blockprobe verify DIR``) checks it with no collector: the
checkpoint's signature, each bundle's signature under its enrolled key, each inclusion proof
against the checkpoint's root, and that each bundle holds measurements of the incident's network,
platform, kind and method.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Protocol

import httpx

from probe.evidence.pack import checkpoint_of, inclusion_of, signer_of
from probe.evidence.signing import b64decode
from probe.evidence.verify import BundleCheck, check_bundle
from reports import evidence_page


class Getter(Protocol):
    """What the pack needs of an HTTP client: GET with query parameters."""

    def get(self, url: str, *, params: dict[str, Any] | None = None) -> Any: ...


def refusal_detail(response: Any) -> str:
    """Why a collector refused: its JSON ``detail``, else the start of its body."""
    try:
        return str(response.json().get("detail", response.text))
    except ValueError:
        return str(response.text[:300])


class InProcess:
    """A ``Getter`` over an app in this process (a collector opened on its data directory)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://collector"
        )

    def get(self, url: str, *, params: dict[str, Any] | None = None) -> httpx.Response:
        return self._loop.run_until_complete(self._client.get(url, params=params))

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()


class PackError(Exception):
    """The pack could not be written (the collector refused, or a file could not be written)."""


README = """# Evidence pack for incident {id}

{summary}

This directory holds the signed measurement bundles behind the incident, the public keys the
probes that signed them had enrolled with the collector, and a proof that each bundle is in the
collector's append-only transparency log, against a checkpoint the collector signed.

## Check it (offline, no collector needed)

    blockprobe verify {dirname}

It checks:

1. `checkpoint.json`: the log checkpoint (size and root hash) is signed by the log key it names
   (key id `{log_key_id}`). Compare that key with the one the collector publishes
   (`GET /api/v1/log/checkpoint`), or pass it: `blockprobe verify {dirname} --log-key {log_key}`.
2. `bundles/*.json`: each bundle's DSSE signature verifies under the enrolled key in `keys/`, and
   its manifest names that key.
3. `proofs/*.json`: each bundle's digest (sha256 of its payload) is a leaf of the signed log tree
   (an RFC 6962 inclusion proof that leads to the checkpoint's root).
4. Each bundle holds measurements of this incident: network {network}, {platform},
   verdict `{kind}` with method `{method}`.

`bundles/*.html` are readable pages of each bundle and of each of its measurements (open them in
a browser): the verdict, the classifier's evidence lines, what the probe and the controls saw.

Written {written} from {source}.
"""


def _get_json(client: Getter, url: str, params: dict[str, Any] | None = None) -> Any:
    response = client.get(url, params=params)
    if response.status_code != 200:
        raise PackError(f"{url}: {response.status_code} {refusal_detail(response)}")
    return response.json()


def write_pack(client: Getter, incident_id: str, out: Path, *, source: str, written: str) -> int:
    """Write the pack of ``incident_id`` to ``out``; returns the number of bundles."""
    incident = _get_json(client, f"/api/v1/reports/incidents/{incident_id}")
    if not incident.get("sample_digests"):
        raise PackError(f"incident {incident_id} names no bundle")
    checkpoint = _get_json(client, "/api/v1/log/checkpoint")
    try:
        for name in ("bundles", "keys", "proofs"):
            (out / name).mkdir(parents=True, exist_ok=True)
        _dump(out / "incident.json", incident)
        _dump(out / "checkpoint.json", checkpoint)
        cp = checkpoint_of(checkpoint)
        for digest in incident["sample_digests"]:
            response = client.get(f"/api/v1/bundles/{digest}")
            if response.status_code != 200:
                raise PackError(f"bundle {digest}: {response.status_code}")
            data: bytes = response.content
            (out / "bundles" / f"{digest}.json").write_bytes(data)
            kid = signer_of(data)
            key = _get_json(client, f"/api/v1/probes/{kid}")
            _dump(out / "keys" / f"{kid}.json", key)
            proof = _get_json(
                client,
                "/api/v1/log/proof/inclusion",
                params={"digest": digest, "size": checkpoint["size"]},
            )
            _dump(out / "proofs" / f"{digest}.json", proof)
            check = check_bundle(data, b64decode(key["public_key"]), inclusion_of(proof), cp)
            _pages(out / "bundles", check)
        (out / "README.md").write_text(_readme(incident, checkpoint, out, source, written))
    except OSError as exc:
        raise PackError(f"cannot write the pack in {out}: {exc}") from exc
    return len(incident["sample_digests"])


def _dump(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=1, sort_keys=True) + "\n")


def _pages(directory: Path, check: BundleCheck) -> None:
    links = evidence_page.Links(served=False, depth=1, home=False)
    (directory / f"{check.digest}.html").write_text(evidence_page.bundle_page(check, links))
    if check.bundle is None:
        return
    sub = directory / check.digest
    sub.mkdir(exist_ok=True)
    deeper = evidence_page.Links(served=False, depth=2, home=False)
    for i in range(len(check.bundle.measurements)):
        (sub / f"{i}.html").write_text(evidence_page.measurement_page(check, i, deeper))


def _readme(
    incident: dict[str, Any], checkpoint: dict[str, Any], out: Path, source: str, written: str
) -> str:
    network = f"{incident['country']} AS{incident['asn']}"
    if incident.get("network"):
        network += f" ({incident['network']})"
    platform = f"platform `{incident['platform']}`" if incident["platform"] else "every platform"
    ended = incident["ended_at"] or "still ongoing when the pack was written"
    summary = (
        f"{incident['kind']} ({incident['method']}) of {platform} in {network}, from"
        f" {incident['started_at']} (first failing measurement) to {ended};"
        f" {incident['probes']} probe(s), {incident['runs']} failing run(s),"
        f" {'confirmed by two probes' if incident['confirmed'] else 'not confirmed'}."
    )
    return README.format(
        id=incident["id"],
        summary=summary,
        dirname=out.name or str(out),
        log_key_id=checkpoint["key_id"],
        log_key=checkpoint["public_key"],
        network=network,
        platform=platform,
        kind=incident["kind"],
        method=incident["method"],
        written=written,
        source=source,
    )
