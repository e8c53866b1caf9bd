"""Evidence routes: a readable page per bundle and per measurement, keys, incidents by id.

Mounted by ``reports.app``. The pages check what they show: the signature under the signer's
enrolled key, and an inclusion proof against the log's current signed checkpoint.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import select

from collectors.schema import bundles
from collectors.store import Store
from probe.evidence.signing import b64encode, load_public_key
from probe.evidence.verify import BundleCheck, Inclusion, check_bundle
from reports import evidence_page
from reports.api import LinkStyle
from reports.incidents import data_end, find_incident
from reports.model import ReportQuery
from translog.checkpoint import Checkpoint, verify_checkpoint

DIGEST = r"^[0-9a-f]{64}$"
KEY_ID = r"^[0-9a-f]{64}$"
INCIDENT = r"^[0-9a-f]{16}$"

router = APIRouter(tags=["evidence"])


def _not_found(detail: str) -> JSONResponse:
    return JSONResponse({"error": "not_found", "detail": detail}, status_code=404)


def signed_checkpoint(request: Request) -> tuple[Checkpoint, str] | None:
    """The log's current checkpoint, checked under the log key, and its note."""
    store: Store = request.app.state.store
    size = store.log_size()
    if size == 0:
        return None
    note: str = request.app.state.checkpoint_note(size)
    key = load_public_key(request.app.state.log_public)
    return verify_checkpoint(note, key, request.app.state.settings.log_origin), note


def bundle_check(request: Request, digest: str) -> BundleCheck | None:
    """The stored bundle ``digest`` checked against its enrolled key and the log."""
    store: Store = request.app.state.store
    with store.engine.connect() as conn:
        row = conn.execute(
            select(bundles.c.key_id, bundles.c.envelope).where(bundles.c.digest == digest)
        ).first()
    if row is None:
        return None
    probe = store.probe(row.key_id)
    found = signed_checkpoint(request)
    inclusion = None
    checkpoint = None
    if found is not None:
        checkpoint = found[0]
        proof = store.inclusion_proof(digest, checkpoint.size)
        if proof is not None:
            inclusion = Inclusion(proof[0], checkpoint.size, tuple(proof[1]))
    return check_bundle(
        bytes(row.envelope), probe.public_key if probe else None, inclusion, checkpoint
    )


@router.get("/bundles/{digest}", response_class=HTMLResponse, response_model=None)
def bundle_page(
    request: Request, digest: Annotated[str, Path(pattern=DIGEST)], links: LinkStyle = "served"
) -> Response:
    """A bundle, decoded and checked, as a readable page."""
    check = bundle_check(request, digest)
    if check is None:
        return _not_found(f"no bundle {digest}")
    style = evidence_page.Links(served=links == "served", depth=1)
    return HTMLResponse(evidence_page.bundle_page(check, style))


@router.get("/bundles/{digest}/{index}", response_class=HTMLResponse, response_model=None)
def measurement_page(
    request: Request,
    digest: Annotated[str, Path(pattern=DIGEST)],
    index: Annotated[int, Path(ge=0, le=100_000)],
    links: LinkStyle = "served",
) -> Response:
    """One measurement of a bundle: verdict, evidence lines, controls, checks."""
    check = bundle_check(request, digest)
    if check is None or check.bundle is None or index >= len(check.bundle.measurements):
        return _not_found(f"no measurement {index} in bundle {digest}")
    style = evidence_page.Links(served=links == "served", depth=2)
    return HTMLResponse(evidence_page.measurement_page(check, index, style))


@router.get("/api/v1/probes/{kid}", tags=["probes"])
def probe_key(request: Request, kid: Annotated[str, Path(pattern=KEY_ID)]) -> JSONResponse:
    """An enrolled probe key (public): to check its bundles' signatures."""
    probe = request.app.state.store.probe(kid)
    if probe is None:
        return _not_found(f"no enrolled key {kid}")
    body: dict[str, Any] = {
        "key_id": probe.key_id,
        "public_key": b64encode(probe.public_key),
        "enrolled_at": probe.enrolled_at.isoformat(),
        "revoked_at": probe.revoked_at.isoformat() if probe.revoked_at else None,
    }
    return JSONResponse(body)


@router.get("/api/v1/reports/incidents/{incident_id}", tags=["reports"])
def incident(request: Request, incident_id: Annotated[str, Path(pattern=INCIDENT)]) -> JSONResponse:
    """One incident by id, among those of the 31 days up to the latest measurement."""
    store: Store = request.app.state.store
    with store.engine.connect() as conn:
        until = data_end(conn)
        if until is None:
            return _not_found("no measurements stored")
        query = ReportQuery(since=until - timedelta(days=31), until=until)
        found = find_incident(conn, incident_id, query)
    if found is None:
        return _not_found(f"no incident {incident_id} in the 31 days up to {until.isoformat()}")
    return JSONResponse(found.model_dump(mode="json"))
