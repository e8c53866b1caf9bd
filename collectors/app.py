"""The collector's HTTP API (FastAPI): routes only; the work is in ingest, store and merkle.

Nothing here reads or logs the client's address; run uvicorn with its access log off
(``collectors.cli`` does).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import Field
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.concurrency import run_in_threadpool

from collectors.body_limit import BodyLimit
from collectors.bounds import TimeWindow
from collectors.config import CollectorSettings
from collectors.content_encoding import BadEncoding, TooLarge, UnsupportedEncoding, decoded
from collectors.db import make_engine
from collectors.enrolment import (
    CHALLENGE_TTL,
    Challenges,
    EnrollRequest,
    EnrolmentRefused,
    admit,
)
from collectors.ingest import AUTH_FAILURES, Ingestor, Outcome, refusal
from collectors.limits import SharedRateLimiter
from collectors.metrics import Metrics
from collectors.migrations import migrate
from collectors.ratelimit import RateLimiter
from collectors.store import Store
from probe.evidence.signing import (
    b64decode,
    b64encode,
    key_id,
    load_or_create_private_key,
    load_public_key,
    raw_public_key,
)
from probe.model.base import FrozenModel
from probe.model.bundle import Envelope
from translog import merkle
from translog.checkpoint import Checkpoint, sign_checkpoint

DIGEST = r"^[0-9a-f]{64}$"
BUNDLES = "/api/v1/bundles"


class RevokeRequest(FrozenModel):
    reason: str = Field(default="revoked by an administrator", max_length=500)


def envelope_schema() -> dict[str, Any]:
    """The Envelope JSON schema with its definitions inlined (for the OpenAPI document)."""
    schema = Envelope.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    result: dict[str, Any] = inline(schema)
    return result


def _json(outcome: Outcome) -> JSONResponse:
    return JSONResponse(outcome.body, status_code=outcome.status, headers=outcome.headers)


def create_app(settings: CollectorSettings | None = None) -> FastAPI:
    """A collector app over the database ``settings`` names (migrated on creation)."""
    settings = settings or CollectorSettings()
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = make_engine(settings.sqlalchemy_url())
    migrate(engine)
    store = Store(engine)
    metrics = Metrics()
    limiter = SharedRateLimiter(
        engine, settings.rate_limit_per_minute / 60.0, settings.rate_limit_burst, prefix="bundles:"
    )
    enrol_limit = SharedRateLimiter(
        engine, settings.enroll_per_minute / 60.0, max(1, int(settings.enroll_per_minute))
    )
    failures = SharedRateLimiter(
        engine,
        settings.auth_failures_per_minute / 60.0,
        max(1, int(settings.auth_failures_per_minute)),
    )
    window = TimeWindow(
        max_age=timedelta(days=settings.max_bundle_age_days),
        max_skew=timedelta(seconds=settings.max_clock_skew_seconds),
    )
    ingestor = Ingestor(store, limiter, metrics, window=window, failures=failures)
    log_key = load_or_create_private_key(settings.log_key_path())
    log_public = raw_public_key(log_key.public_key())
    challenges = Challenges.from_log_key(log_key)
    notes: dict[int, str] = {}  # checkpoint notes by size (Ed25519 signatures are deterministic)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(
        title="blockprobe collector",
        summary="Receives signed measurement bundles and keeps a transparency log of them.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.metrics = metrics
    app.state.log_public = log_public

    def body_limit(path: str) -> int:
        return settings.max_bundle_bytes if path == BUNDLES else settings.max_body_bytes

    app.add_middleware(
        BodyLimit, limit_for=body_limit, on_refusal=lambda: metrics.reject("too_large")
    )

    def failed_auth(outcome: Outcome) -> JSONResponse:
        """Count a failed authentication; 429 instead once the shared budget is spent."""
        wait = failures.take(AUTH_FAILURES)
        if wait is not None:
            outcome = _too_many("too_many_failures", "too many failed authentications", wait)
        metrics.reject(str(outcome.body["error"]))
        return _json(outcome)

    async def _storage_down(_request: Request, exc: Exception) -> JSONResponse:
        body = {"error": "storage_unavailable", "detail": type(exc).__name__}
        return JSONResponse(body, status_code=503, headers={"retry-after": "5"})

    app.add_exception_handler(OperationalError, _storage_down)
    app.add_exception_handler(PoolTimeout, _storage_down)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own answer echoes the input, which JSON cannot carry when it is a number
        # such as Infinity (a 500); the location and the reason are what a client needs
        errors = [{k: v for k, v in e.items() if k != "input"} for e in exc.errors()]
        return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)

    def guessing_stopped() -> Outcome | None:
        """429 while the failed-authentication budget is spent: secrets are not even compared."""
        wait = failures.empty(AUTH_FAILURES)
        if wait is None:
            return None
        metrics.reject("too_many_failures")
        return _too_many("too_many_failures", "too many failed authentications", wait)

    def require_admin(authorization: Annotated[str | None, Header()] = None) -> None:
        expected = settings.admin_token
        if expected is None:
            raise _Refused(refusal(403, "admin_disabled", "no admin token is configured"))
        stopped = guessing_stopped()
        if stopped is not None:
            raise _Refused(stopped)
        given = (authorization or "").removeprefix("Bearer ").encode()
        if not hmac.compare_digest(given, expected.get_secret_value().encode()):
            raise _Refused(refusal(401, "unauthorized", "a valid admin bearer token is required"))

    @app.exception_handler(_Refused)
    async def _refused(_request: Request, exc: _Refused) -> JSONResponse:
        if exc.outcome.status in (401, 403) and exc.outcome.body["error"] == "unauthorized":
            return failed_auth(exc.outcome)
        return _json(exc.outcome)

    @app.post("/api/v1/probes/challenge", tags=["probes"])
    def challenge() -> dict[str, Any]:
        """A fresh challenge for the enrolling key to sign (valid for a few minutes)."""
        return {"challenge": challenges.issue(), "expires_in": int(CHALLENGE_TTL)}

    @app.post(
        "/api/v1/probes",
        status_code=201,
        tags=["probes"],
        responses={
            200: {"description": "already enrolled"},
            202: {"description": "enrolled, waiting for an administrator's approval"},
            400: {"description": "bad key or challenge"},
            403: {"description": "bad token or proof, revoked, or bound to another network"},
            429: {"description": "rate limited; see Retry-After"},
        },
    )
    def enroll(body: EnrollRequest) -> JSONResponse:
        """Enrol a probe's key for one network, with proof of possession (docs/collector.md)."""
        wait = enrol_limit.take("enrol")
        if wait is not None:
            metrics.reject("enrol_rate_limited")
            return _json(_too_many("rate_limited", "too many enrolment requests", wait))
        if body.token is not None and (stopped := guessing_stopped()) is not None:
            return _json(stopped)
        try:
            admitted = admit(body, settings.enroll_policy, settings.enroll_tokens, challenges)
        except EnrolmentRefused as exc:
            outcome = refusal(exc.status, exc.error, exc.detail)
            if exc.error in ("bad_token", "token_required", "bad_proof"):
                return failed_auth(outcome)
            metrics.reject(exc.error)
            return _json(outcome)
        kid = key_id(load_public_key(admitted.public_key))
        network = (body.country, body.asn)
        status = store.enroll(
            kid,
            admitted.public_key,
            network=network,
            voucher=voucher_of(body, settings.enroll_policy, kid),
            approved=admitted.approved,
        )
        if status == "revoked":
            return _json(refusal(403, "revoked_key", f"key {kid} is revoked"))
        if status == "other_network":
            detail = f"key {kid} is enrolled for another network; a key serves one network"
            return _json(refusal(403, "wrong_network", detail))
        code = {"enrolled": 201, "pending": 202}.get(status, 200)
        return JSONResponse({"key_id": kid, "status": status}, status_code=code)

    @app.post(
        BUNDLES,
        status_code=201,
        tags=["bundles"],
        responses={
            200: {"description": "already stored (same digest)"},
            400: {"description": "malformed envelope"},
            401: {"description": "unknown key"},
            403: {"description": "bad signature or revoked key"},
            413: {"description": "too large"},
            422: {"description": "payload is not a valid bundle"},
            429: {"description": "rate limited; see Retry-After"},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": envelope_schema()}},
            }
        },
    )
    async def submit_bundle(request: Request) -> JSONResponse:
        """Submit a DSSE envelope whose payload is a bundle (application/json body)."""
        limit = settings.max_bundle_bytes
        sent = await request.body()  # at most max_bundle_bytes: BodyLimit read it
        try:
            body = decoded(sent, limit, request.headers.get("content-encoding"))
        except TooLarge:
            metrics.reject("too_large")
            return _json(refusal(413, "too_large", f"bundles are limited to {limit} bytes"))
        except UnsupportedEncoding as exc:
            metrics.reject("encoding")
            return _json(refusal(415, "encoding", f"content encoding {exc} (use gzip or none)"))
        except BadEncoding as exc:
            metrics.reject("malformed")
            return _json(refusal(400, "malformed", f"the gzip body does not decompress: {exc}"))
        return _json(await run_in_threadpool(ingestor.submit, body))

    @app.get("/api/v1/bundles/{digest}", tags=["bundles"])
    def get_bundle(digest: Annotated[str, Path(pattern=DIGEST)]) -> Response:
        """The stored envelope of a bundle (header ``key-revoked``: when its key was revoked)."""
        data = store.envelope(digest)
        if data is None:
            return _json(refusal(404, "not_found", f"no bundle {digest}"))
        revoked = store.bundle_revoked_at(digest)
        headers = {"key-revoked": revoked.isoformat()} if revoked else {}
        return Response(data, media_type="application/json", headers=headers)

    def checkpoint_note(size: int) -> str:
        note = notes.get(size)
        if note is None:
            note = sign_checkpoint(Checkpoint(settings.log_origin, size, store.root(size)), log_key)
            if len(notes) > 1000:
                notes.clear()
            notes[size] = note
        return note

    @app.get("/api/v1/log/checkpoint", tags=["log"])
    def checkpoint() -> dict[str, Any]:
        """The log's current size and root, signed by the collector as a C2SP note."""
        size = store.log_size()
        note = checkpoint_note(size)
        root = note.split("\n")[2]
        return {
            "origin": settings.log_origin,
            "size": size,
            "root": b64decode(root).hex(),
            "note": note,
            "public_key": b64encode(log_public),
            "key_id": key_id(log_key.public_key()),
        }

    @app.get("/api/v1/log/proof/inclusion", tags=["log"])
    def inclusion(
        digest: Annotated[str, Query(pattern=DIGEST)], size: Annotated[int, Query(ge=1)]
    ) -> JSONResponse:
        """Audit path of a bundle digest in the tree of ``size`` leaves."""
        if size > store.log_size():
            return _json(refusal(400, "bad_size", "size is beyond the log"))
        index = store.bundle_index(digest)
        if index is None:
            return _json(refusal(404, "not_found", f"no bundle {digest} in the log"))
        if index >= size:
            return _json(refusal(400, "bad_size", f"leaf {index} is not in a tree of {size}"))
        found = store.inclusion_proof(digest, size)
        assert found is not None
        return JSONResponse(
            {
                "digest": digest,
                "leaf_index": index,
                "tree_size": size,
                "leaf_hash": merkle.leaf_hash(bytes.fromhex(digest)).hex(),
                "proof": [h.hex() for h in found[1]],
                "key_revoked": store.bundle_revoked_at(digest) is not None,
            }
        )

    @app.get("/api/v1/log/proof/consistency", tags=["log"])
    def consistency(
        first: Annotated[int, Query(ge=0)], second: Annotated[int, Query(ge=0)]
    ) -> JSONResponse:
        """Proof that the tree of ``second`` leaves extends the tree of ``first``."""
        if not first <= second <= store.log_size():
            return _json(refusal(400, "bad_size", "need first <= second <= log size"))
        proof = store.consistency_proof(first, second)
        return JSONResponse({"first": first, "second": second, "proof": [h.hex() for h in proof]})

    @app.get("/api/v1/admin/probes", tags=["admin"], dependencies=[Depends(require_admin)])
    def list_probes() -> list[dict[str, Any]]:
        """Every enrolled key, revoked or not."""
        return [
            {
                "key_id": p.key_id,
                "country": p.country,
                "asn": p.asn,
                "voucher": p.voucher,
                "enrolled_at": p.enrolled_at.isoformat(),
                "approved_at": p.approved_at.isoformat() if p.approved_at else None,
                "revoked_at": p.revoked_at.isoformat() if p.revoked_at else None,
                "revoke_reason": p.revoke_reason,
            }
            for p in store.probes()
        ]

    @app.post(
        "/api/v1/admin/probes/{kid}/approve", tags=["admin"], dependencies=[Depends(require_admin)]
    )
    def approve(kid: Annotated[str, Path(pattern=DIGEST)]) -> JSONResponse:
        """Approve a pending key: the administrator vouches for it (one voucher per key)."""
        if not store.approve(kid):
            return _json(refusal(404, "not_found", f"no pending key {kid}"))
        return JSONResponse({"key_id": kid, "status": "enrolled"})

    @app.post(
        "/api/v1/admin/probes/{kid}/revoke", tags=["admin"], dependencies=[Depends(require_admin)]
    )
    def revoke(
        kid: Annotated[str, Path(pattern=DIGEST)], body: RevokeRequest | None = None
    ) -> JSONResponse:
        """Revoke a key: later bundles are refused (403), its measurements leave the reports
        (recomputed); its bundles stay in the log, marked revoked."""
        reason = (body or RevokeRequest()).reason
        if not store.revoke(kid, reason):
            return _json(refusal(404, "not_found", f"no enrolled key {kid}"))
        return JSONResponse({"key_id": kid, "status": "revoked", "reason": reason})

    app.state.checkpoint_note = checkpoint_note

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "log_size": store.log_size()}

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    def prometheus() -> PlainTextResponse:
        gauges = {"blockprobe_log_size": ("Leaves in the transparency log.", store.log_size())}
        return PlainTextResponse(
            metrics.render(gauges), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    return app


def voucher_of(request: EnrollRequest, policy: str, kid: str) -> str:
    """Who vouches for a key: its token (by digest), the approving administrator, or nobody."""
    if request.token is not None:
        digest = hashlib.sha256(request.token.get_secret_value().encode()).hexdigest()[:32]
        return f"token:{digest}"
    return "open" if policy == "open" else f"approval:{kid}"


def _too_many(error: str, what: str, wait: float) -> Outcome:
    return refusal(
        429,
        error,
        f"{what}; retry in {wait:.1f} s",
        **{"retry-after": RateLimiter.retry_after(wait)},
    )


class _Refused(Exception):
    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
