"""Checking an evidence pack offline, with no collector.

The checkpoint's signature, each bundle's signature under its enrolled key, each inclusion
proof, and that the bundles hold measurements of the incident.

``blockprobe report evidence`` writes the pack (``reports.evidence_pack``); ``blockprobe verify
DIR`` checks it with this module and no collector.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probe.evidence.bundle import read_envelope
from probe.evidence.signing import SignatureError, b64decode, envelope_payload, load_public_key
from probe.evidence.verify import Inclusion, check_bundle
from probe.model.bundle import Bundle
from translog.checkpoint import Checkpoint, verify_checkpoint


def signer_of(data: bytes) -> str:
    """The key id that signed the bundle in ``data`` (a DSSE envelope), as its manifest says."""
    bundle = Bundle.model_validate_json(envelope_payload(read_envelope(data)))
    return bundle.manifest.key_id


def checkpoint_of(body: dict[str, Any]) -> Checkpoint:
    """The checkpoint in a pack's ``checkpoint.json``, its signature checked under the log key."""
    key = load_public_key(b64decode(body["public_key"]))
    return verify_checkpoint(body["note"], key, body["origin"])


def inclusion_of(proof: dict[str, Any]) -> Inclusion:
    """An inclusion proof as the collector's API and the pack write it."""
    hashes = tuple(bytes.fromhex(h) for h in proof["proof"])
    return Inclusion(int(proof["leaf_index"]), int(proof["tree_size"]), hashes)


@dataclass
class PackReport:
    """What ``verify_pack`` found: a line per check, and whether all passed."""

    lines: list[str] = field(default_factory=list)
    failures: int = 0

    def good(self, text: str) -> None:
        self.lines.append(f"ok    {text}")

    def bad(self, text: str) -> None:
        self.lines.append(f"FAIL  {text}")
        self.failures += 1

    @property
    def ok(self) -> bool:
        return self.failures == 0


def verify_pack(directory: Path, log_key: str | None = None) -> PackReport:
    """Check an evidence pack offline (module docstring)."""
    report = PackReport()
    try:
        incident = json.loads((directory / "incident.json").read_text())
        body = json.loads((directory / "checkpoint.json").read_text())
    except (OSError, ValueError) as exc:
        report.bad(f"not an evidence pack: {exc}")
        return report
    if log_key is not None and log_key != body.get("public_key"):
        report.bad("the checkpoint is signed by a log key other than the one given")
        return report
    try:
        checkpoint = checkpoint_of(body)
    except (ValueError, KeyError, SignatureError) as exc:
        report.bad(f"checkpoint: {exc}")
        return report
    report.good(
        f"checkpoint of size {checkpoint.size} signed by log key {body.get('key_id', '?')[:16]}"
    )
    digests = incident.get("sample_digests") or []
    if not digests:
        report.bad("the incident names no bundle")
    for digest in digests:
        _verify_one(directory, digest, incident, checkpoint, report)
    return report


def _verify_one(
    directory: Path,
    digest: str,
    incident: dict[str, Any],
    checkpoint: Checkpoint,
    report: PackReport,
) -> None:
    try:
        data = (directory / "bundles" / f"{digest}.json").read_bytes()
        kid = signer_of(data)
        key = json.loads((directory / "keys" / f"{kid}.json").read_text())
        proof = json.loads((directory / "proofs" / f"{digest}.json").read_text())
        check = check_bundle(data, b64decode(key["public_key"]), inclusion_of(proof), checkpoint)
    except (OSError, ValueError, KeyError, SignatureError) as exc:
        report.bad(f"bundle {digest[:16]}: {exc}")
        return
    name = f"bundle {digest[:16]}"
    if check.digest != digest:
        report.bad(f"{name}: its payload hashes to {check.digest}, not its name")
        return
    (report.good if check.signature_ok else report.bad)(f"{name}: {check.signature}")
    (report.good if check.inclusion_ok else report.bad)(f"{name}: {check.inclusion}")
    for problem in check.problems:
        report.bad(f"{name}: {problem}")
    if check.bundle is None:
        return
    matching = [
        m
        for m in check.bundle.full_measurements()
        if (m.vantage.country, m.vantage.asn) == (incident["country"], incident["asn"])
        and (incident["platform"] is None or m.platform == incident["platform"])
        and m.verdict.kind == incident["kind"]
        and m.verdict.method == incident["method"]
    ]
    what = f"{incident['kind']} ({incident['method']})"
    if matching:
        first = min(m.started_at for m in matching).isoformat()
        report.good(f"{name}: {len(matching)} measurement(s) {what}, first at {first}")
    else:
        report.bad(f"{name}: no measurement of {what} in this network")
