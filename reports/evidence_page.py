"""Readable pages of the evidence: one per bundle, one per measurement (HTML, no script).

A bundle's page says who signed it and whether the signature verifies under the enrolled key,
where it sits in the transparency log and whether the inclusion proof leads to the signed
checkpoint, and lists its measurements. A measurement's page shows its verdict with the
classifier's evidence lines, what the probe saw, what the control vantage saw and the canaries.

``Links`` makes the pages work both served by a collector (absolute paths) and written as files
beside a dashboard (relative paths: ``bundles/DIGEST.html``, ``bundles/DIGEST/N.html``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any

from probe.evidence.verify import BundleCheck
from probe.model.measurement import Measurement, Observations

COLOURS = {
    "reachable": "#2e7d32",
    "blocked": "#c62828",
    "throttled": "#ef6c00",
    "outage": "#6a1b9a",
    "inconclusive": "#757575",
}
CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:70em;padding:1.2em;
color:#212121;background:#fafafa}
h1{font-size:1.35em;margin:.2em 0}h2{font-size:1.1em;margin:1.3em 0 .4em}
table{border-collapse:collapse;margin:.3em 0}th,td{border:1px solid #ddd;padding:.25em .55em;
text-align:left;vertical-align:top}th{background:#f0f0f0}
.ok{color:#2e7d32;font-weight:600}.bad{color:#c62828;font-weight:600}.muted{color:#757575}
.verdict{display:inline-block;color:#fff;padding:.1em .6em;border-radius:3px;font-weight:600}
pre{background:#f4f4f4;padding:.6em;overflow-x:auto;font-size:.85em}
code{font-size:.9em;word-break:break-all}
"""


@dataclass(frozen=True)
class Links:
    """Where pages live: served (``/bundles/...``) or written as files (relative paths)."""

    served: bool
    depth: int = 0  # written pages: directories below the dashboard's
    home: bool = True  # a dashboard to link back to

    def _root(self) -> str:
        return "/" if self.served else "../" * self.depth

    def bundle(self, digest: str) -> str:
        return f"{self._root()}bundles/{digest}" + ("" if self.served else ".html")

    def measurement(self, digest: str, index: int) -> str:
        return f"{self._root()}bundles/{digest}/{index}" + ("" if self.served else ".html")

    def raw(self, digest: str) -> str | None:
        return f"/api/v1/bundles/{digest}" if self.served else None

    def dashboard(self) -> str:
        return "/dashboard" if self.served else f"{self._root()}dashboard.html"


def verdict_badge(kind: str, method: str | None = None) -> str:
    label = kind + (f" ({method})" if method else "")
    colour = COLOURS.get(kind, "#757575")
    return (
        f"<span class=verdict data-verdict='{escape(kind)}' style='background:{colour}'>"
        f"{escape(label)}</span>"
    )


def page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>{body}</body></html>\n"
    )


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _status(ok: bool | None, text: str) -> str:
    css = "muted" if ok is None else ("ok" if ok else "bad")
    mark = "" if ok is None else ("&#10003; " if ok else "&#10007; ")
    return f"<span class={css}>{mark}{escape(text)}</span>"


def bundle_page(check: BundleCheck, links: Links, network: str | None = None) -> str:
    """The page of one bundle."""
    digest = check.digest
    parts = [f"<p><a href='{links.dashboard()}'>&larr; dashboard</a></p>" if links.home else ""]
    parts.append(f"<h1>Signed bundle <code>{digest[:16]}</code></h1>")
    rows: list[tuple[str, str]] = [("digest (sha256 of the payload)", f"<code>{digest}</code>")]
    bundle = check.bundle
    if bundle is not None:
        mf = bundle.manifest
        net = f"{mf.country or '??'} AS{mf.asn}" + (f" ({escape(network)})" if network else "")
        rows += [
            ("network", net),
            ("created", _time(mf.created_at)),
            ("software", escape(mf.software)),
            ("probe key", f"<code>{mf.key_id}</code>"),
            ("measurements", str(mf.measurement_count)),
        ]
    rows.append(("signature", _status(check.signature_ok, check.signature)))
    rows.append(("transparency log", _status(check.inclusion_ok, check.inclusion)))
    for problem in check.problems:
        rows.append(("problem", _status(False, problem)))
    parts.append(
        "<table id=summary>"
        + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
        + "</table>"
    )
    if check.checkpoint is not None:
        parts.append("<h2>The log's signed checkpoint</h2>")
        parts.append(f"<pre id=checkpoint>{escape(check.checkpoint.body())}</pre>")
    if bundle is not None:
        parts.append("<h2>Measurements</h2><table id=measurements><tr><th>#</th><th>platform</th>")
        parts.append("<th>endpoint</th><th>verdict</th><th>started</th><th>evidence</th></tr>")
        for i, m in enumerate(bundle.full_measurements()):
            first = m.verdict.evidence[0] if m.verdict.evidence else ""
            parts.append(
                f"<tr class=measurement data-verdict='{m.verdict.kind}'"
                f" data-method='{escape(m.verdict.method or '')}'>"
                f"<td><a href='{links.measurement(digest, i)}'>{i}</a></td>"
                f"<td>{escape(m.platform)}</td><td>{escape(m.target)}</td>"
                f"<td>{verdict_badge(m.verdict.kind, m.verdict.method)}</td>"
                f"<td>{_time(m.started_at)}</td><td>{escape(first)}</td></tr>"
            )
        parts.append("</table>")
    parts.append(_how_to_verify(digest, links))
    return page(f"bundle {digest[:16]}", "\n".join(parts))


def _how_to_verify(digest: str, links: Links) -> str:
    raw = links.raw(digest)
    fetch = f"<a href='{raw}'>the signed envelope</a> (JSON)" if raw else "the signed envelope"
    return (
        "<h2>Check it yourself</h2><p>Download "
        f"{fetch} and run <code>blockprobe verify FILE --collector URL</code>: it checks the"
        " signature and asks the collector for an inclusion proof against its signed checkpoint."
        " Or write an evidence pack for an incident (<code>blockprobe report evidence ID"
        " --output DIR</code>) and check it offline with <code>blockprobe verify DIR</code>.</p>"
    )


def measurement_page(check: BundleCheck, index: int, links: Links) -> str:
    """The page of one measurement of a bundle."""
    assert check.bundle is not None
    m = check.bundle.full_measurements()[index]
    v = m.verdict
    parts = [
        f"<p><a href='{links.bundle(check.digest)}'>&larr; bundle {check.digest[:16]}</a></p>",
        f"<h1>{escape(m.platform)}: {escape(m.target)}</h1>",
        f"<p id=verdict>{verdict_badge(v.kind, v.method)} confidence {v.confidence:.2f},"
        f" measured {_time(m.started_at)} from {m.vantage.country or '??'} AS{m.vantage.asn}"
        f"{' (' + escape(m.vantage.network) + ')' if m.vantage.network else ''}</p>",
        f"<p>{_status(check.signature_ok, check.signature)}<br>"
        f"{_status(check.inclusion_ok, check.inclusion)}</p>",
        "<h2>Why: the classifier's evidence</h2>",
    ]
    if v.evidence:
        parts.append("<ul id=evidence>" + "".join(f"<li>{escape(e)}</li>" for e in v.evidence))
        parts.append("</ul>")
    else:
        parts.append("<p class=muted id=evidence>no evidence lines (nothing failed)</p>")
    for name, summary in (("download", v.throughput), ("upload", v.throughput_up)):
        if summary is not None:
            control = f"{summary.control_kbps:.0f} kbps" if summary.control_kbps else "not measured"
            parts.append(
                f"<p class=throughput>{name}: {summary.kbps:.0f} kbps over {summary.bytes} bytes;"
                f" same-path control: {control}</p>"
            )
    if v.http3 is not None:
        method = f" ({escape(v.http3.method)})" if v.http3.method else ""
        lines = "".join(f"<li>{escape(e)}</li>" for e in v.http3.evidence)
        parts.append(
            f"<h3>HTTP/3 (QUIC)</h3><p id=http3>{escape(v.http3.kind)}{method},"
            f" confidence {v.http3.confidence:.2f}</p><ul>{lines}</ul>"
        )
    parts.append("<h2>What the probe saw</h2>" + observations_table(m.local, "local"))
    parts.append("<h2>Controls</h2>")
    if m.control is not None:
        parts.append("<h3>From the control vantage</h3>" + observations_table(m.control, "control"))
    else:
        parts.append("<p class=muted>no control vantage was asked</p>")
    canaries = _canaries(m)
    if canaries:
        for domain, obs in sorted(canaries.items()):
            parts.append(f"<h3>Canary {escape(domain)}</h3>" + observations_table(obs, "canary"))
    else:
        parts.append("<p class=muted>no canaries recorded with this measurement</p>")
    return page(f"{m.platform} {v.kind}", "\n".join(parts))


def _canaries(m: Measurement) -> dict[str, Observations]:
    found = getattr(m, "canaries", None)
    return dict(found) if isinstance(found, dict) else {}


_SKIP = {"samples", "certificate", "headers", "packets", "received", "ttls", "late_answers"}


def observations_table(obs: Observations, section: str) -> str:
    """Every observation of a step as one row: its fields as ``name=value``."""
    rows = []
    for step in ("dns", "tcp", "tls", "http", "quic", "throughput", "packets"):
        for item in getattr(obs, step, ()):
            fields = item.model_dump(mode="json")
            shown = [
                f"{k}={_short(val)}"
                for k, val in fields.items()
                if k not in _SKIP and val not in (None, [], {}, "")
            ]
            failure = fields.get("failure")
            css = " class=failed" if failure else ""
            rows.append(f"<tr{css}><td>{step}</td><td>{escape(', '.join(shown))}</td></tr>")
    if not rows:
        return "<p class=muted>no observations</p>"
    return f"<table class='observations {section}'>" + "".join(rows) + "</table>"


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 120 else text[:117] + "..."
