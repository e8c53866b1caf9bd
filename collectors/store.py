"""Storage: enrolled probes, bundles with their measurements, and the log over bundle digests.

A bundle, its measurement rows, its log leaf and the log head move together in ONE transaction:
a crash leaves either all of them or none. The log head row is locked (``FOR UPDATE`` on
PostgreSQL, the write lock on SQLite) for the append, so processes sharing a database append in
one order. Perfect subtree hashes are stored as they complete; proofs read O(log^2 n) of them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Connection, Engine, bindparam, func, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from collectors.db import write_transaction
from collectors.network_series import rebuilt_keys, refresh_networks, run_keys
from collectors.quiet import mark_quiet, quiet_series, update_quiet
from collectors.rollup import forget_key, update_rollups
from collectors.runs import forget_runs, record_runs
from collectors.schema import bundles, log_head, log_nodes, measurements, probes
from collectors.series import key_series, rebuild_series, record_series
from translog import merkle

EnrollStatus = Literal["enrolled", "already_enrolled", "pending", "revoked", "other_network"]
Network = tuple[str | None, int | None]  # country, ASN


class RateLimited(Exception):
    """The key's rate limit refused the bundle: retry in ``wait`` seconds."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"retry in {wait:.1f} s")
        self.wait = wait


@dataclass(frozen=True)
class ProbeRecord:
    """An enrolled public key, the network it is bound to and who vouched for it."""

    key_id: str
    public_key: bytes
    enrolled_at: datetime
    revoked_at: datetime | None
    revoke_reason: str | None
    country: str | None = None
    asn: int | None = None
    voucher: str | None = None
    approved_at: datetime | None = None

    @property
    def network(self) -> Network:
        return (self.country, self.asn)


class Store:
    """The collector's database, through SQLAlchemy Core."""

    def __init__(self, engine: Engine, node_cache: int = 500_000) -> None:
        self.engine = engine
        # One statement needs no transaction around it: on PostgreSQL that saves its BEGIN and
        # ROLLBACK round trips (SQLite's reads cost none).
        postgres = engine.dialect.name == "postgresql"
        self._single_reads = (
            engine.execution_options(isolation_level="AUTOCOMMIT") if postgres else engine
        )
        self._nodes: dict[tuple[int, int], bytes] = {}  # committed perfect subtrees (immutable)
        self._node_cache = node_cache

    # -- probes --------------------------------------------------------------------------------

    def enroll(
        self,
        key_id: str,
        public_key: bytes,
        *,
        network: Network,
        voucher: str,
        approved: bool = True,
    ) -> EnrollStatus:
        """Enrol a key bound to ``network``, vouched for by ``voucher``; pending unless approved."""
        existing = self.probe(key_id)
        if existing is None:
            now = datetime.now(UTC)
            try:
                with write_transaction(self.engine) as conn:
                    conn.execute(
                        insert(probes).values(
                            key_id=key_id,
                            public_key=public_key,
                            enrolled_at=now,
                            country=network[0],
                            asn=network[1],
                            voucher=voucher,
                            approved_at=now if approved else None,
                        )
                    )
                return "enrolled" if approved else "pending"
            except IntegrityError:  # enrolled concurrently by another request
                existing = self.probe(key_id)
                if existing is None:
                    raise
        if existing.revoked_at:
            return "revoked"
        if existing.network != network:
            return "other_network"
        if existing.approved_at is None and approved:
            self.approve(key_id, voucher)
            return "enrolled"
        return "already_enrolled" if existing.approved_at else "pending"

    def approve(self, key_id: str, voucher: str | None = None) -> bool:
        """Approve a pending key (an administrator vouches for it); False if not enrolled."""
        values: dict[str, Any] = {"approved_at": datetime.now(UTC)}
        values["voucher"] = voucher or f"approval:{key_id}"
        with write_transaction(self.engine) as conn:
            result = conn.execute(
                update(probes)
                .where(probes.c.key_id == key_id, probes.c.approved_at.is_(None))
                .values(**values)
            )
        return result.rowcount > 0

    def probe(self, key_id: str) -> ProbeRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(probes).where(probes.c.key_id == key_id)).first()
        return ProbeRecord(**row._asdict()) if row else None

    def lookup(
        self, key_ids: Sequence[str], digest: str
    ) -> tuple[dict[str, ProbeRecord], int | None]:
        """The enrolled keys among ``key_ids`` and the log index of bundle ``digest``, in one
        query (ingest's first read). The index is None when not stored or no key is enrolled."""
        with self._single_reads.connect() as conn:
            rows = conn.execute(_LOOKUP, {"key_ids": sorted(set(key_ids)), "digest": digest}).all()
        found: dict[str, ProbeRecord] = {}
        index: int | None = None
        for row in rows:
            fields = row._asdict()
            stored_index = fields.pop("stored_index")
            index = None if stored_index is None else int(stored_index)
            found[row.key_id] = ProbeRecord(**fields)
        return found, index

    def probes(self) -> list[ProbeRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(probes).order_by(probes.c.enrolled_at)).all()
        return [ProbeRecord(**row._asdict()) for row in rows]

    def revoke(self, key_id: str, reason: str) -> bool:
        """Revoke a key; False if it is not enrolled.

        Its bundles stay in the log (append-only, shown as revoked); its measurements leave the
        reports: the rollups of every day it voted in are recomputed, in the same transaction.
        """
        with write_transaction(self.engine) as conn:
            if conn.dialect.name == "postgresql":  # ingest holds this lock while it adds rollups
                conn.execute(select(log_head.c.size).where(log_head.c.id == 1).with_for_update())
            result = conn.execute(
                update(probes)
                .where(probes.c.key_id == key_id)
                .values(revoked_at=datetime.now(UTC), revoke_reason=reason)
            )
            if result.rowcount > 0:
                forget_key(conn, key_id)
                hours = key_series(conn, key_id)
                series = quiet_series(conn, key_id)
                forget_runs(conn, key_id)
                rebuild_series(conn, hours)
                refresh_networks(conn, rebuilt_keys(hours))
                mark_quiet(conn, series)
        return result.rowcount > 0

    # -- bundles -------------------------------------------------------------------------------

    def bundle_index(self, digest: str) -> int | None:
        """The log index of a stored bundle, None if it is not stored."""
        with self.engine.connect() as conn:
            index = conn.execute(
                select(bundles.c.log_index).where(bundles.c.digest == digest)
            ).scalar()
        return None if index is None else int(index)

    def bundle_revoked_at(self, digest: str) -> datetime | None:
        """When the key of a stored bundle was revoked (None: in good standing, or no bundle)."""
        with self.engine.connect() as conn:
            value = conn.execute(
                select(probes.c.revoked_at)
                .join_from(bundles, probes, probes.c.key_id == bundles.c.key_id)
                .where(bundles.c.digest == digest)
            ).scalar()
        return value if isinstance(value, datetime) else None

    def envelope(self, digest: str) -> bytes | None:
        with self.engine.connect() as conn:
            data = conn.execute(
                select(bundles.c.envelope).where(bundles.c.digest == digest)
            ).scalar()
        return None if data is None else bytes(data)

    def add_bundle(
        self,
        digest: str,
        key_id: str,
        envelope: bytes,
        rows: Sequence[dict[str, Any]],
        *,
        spend: Callable[[Connection], float | None] | None = None,
    ) -> tuple[bool, int]:
        """Store a bundle, its measurement rows and its log leaf; (created, log index).

        ``spend`` takes the key's rate-limit token in the same transaction (one commit per
        bundle); when it answers a wait, nothing but the spent bucket is written and
        ``RateLimited`` is raised.
        """
        new_nodes: list[tuple[int, int, bytes]] = []
        wait: float | None = None
        try:
            with write_transaction(self.engine) as conn:
                head, existing = conn.execute(_LOCK_HEAD, {"digest": digest}).one()
                size = int(head)
                if existing is not None:
                    return False, int(existing)
                wait = spend(conn) if spend is not None else None
                if wait is None:
                    self._append(conn, size, digest, key_id, envelope, rows, new_nodes)
        except IntegrityError:
            # PostgreSQL reads the digest with the snapshot taken before the head lock was
            # granted: a worker that stored the same bundle meanwhile is seen only here. All of
            # this transaction (the spent token too) rolled back.
            stored = self.bundle_index(digest)
            if stored is None:
                raise
            return False, stored
        if wait is not None:
            raise RateLimited(wait)
        self._remember(new_nodes)  # only once committed
        return True, size

    def _append(
        self,
        conn: Connection,
        size: int,
        digest: str,
        key_id: str,
        envelope: bytes,
        rows: Sequence[dict[str, Any]],
        new_nodes: list[tuple[int, int, bytes]],
    ) -> None:
        """Insert the bundle, its rows, rollups and log leaf at index ``size`` (in ``conn``)."""
        leaf = merkle.leaf_hash(bytes.fromhex(digest))
        known = self._nodes_in(conn, merkle.append_siblings(size))
        new_nodes += merkle.new_perfect_nodes(size, leaf, lambda lv, i: known[(lv, i)])
        bundle = {
            "digest": digest,
            "key_id": key_id,
            "received_at": datetime.now(UTC),
            "log_index": size,
            "measurement_count": len(rows),
            "envelope": envelope,
        }
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(_PG_APPEND, _pg_append_params(bundle, rows, new_nodes))
        else:
            conn.execute(_INSERT_BUNDLE, bundle)
            if rows:
                conn.execute(_INSERT_MEASUREMENTS, [{**r, "bundle_digest": digest} for r in rows])
            conn.execute(
                _INSERT_NODES, [{"level": lv, "idx": i, "hash": h} for lv, i, h in new_nodes]
            )
            conn.execute(_SET_SIZE, {"size": size + 1})
        if rows:
            update_rollups(conn, rows, key_id=key_id, digest=digest)
            runs = record_runs(conn, rows, key_id=key_id, digest=digest)
            record_series(conn, runs)
            refresh_networks(conn, run_keys(runs))
            update_quiet(conn, runs)

    def _nodes_in(self, conn: Connection, wanted: Sequence[tuple[int, int]]) -> merkle.Nodes:
        """The perfect subtrees ``wanted``: from the cache, the rest in one query."""
        found = {key: self._nodes[key] for key in wanted if key in self._nodes}
        missing = [key for key in wanted if key not in found]
        if missing:
            n = log_nodes.c
            read = conn.execute(
                select(n.level, n.idx, n.hash).where(
                    tuple_(n.level, n.idx).in_([tuple_(lv, i) for lv, i in missing])
                )
            ).all()
            fresh = [(int(lv), int(i), bytes(h)) for lv, i, h in read]
            # Every node read was committed by an earlier append (the head lock orders appends).
            self._remember(fresh)
            found.update({(lv, i): h for lv, i, h in fresh})
            absent = [key for key in missing if key not in found]
            if absent:
                raise LookupError(f"log node {absent[0]} is missing")
        return found

    def measurement_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(measurements)).scalar_one())

    # -- the log -------------------------------------------------------------------------------

    def log_size(self) -> int:
        with self.engine.connect() as conn:
            size = conn.execute(select(log_head.c.size).where(log_head.c.id == 1)).scalar_one()
        return int(size)

    def root(self, size: int) -> bytes:
        with self.engine.connect() as conn:
            return merkle.root(size, self._subtree(conn))

    def inclusion_proof(self, digest: str, size: int) -> tuple[int, list[bytes]] | None:
        """(leaf index, proof) of a stored bundle in the tree of ``size``; None if not stored."""
        index = self.bundle_index(digest)
        if index is None:
            return None
        with self.engine.connect() as conn:
            return index, merkle.inclusion_proof(index, size, self._subtree(conn))

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        with self.engine.connect() as conn:
            return merkle.consistency_proof(first, second, self._subtree(conn))

    def _subtree(self, conn: Connection) -> merkle.Subtree:
        return merkle.subtree_from_perfect(lambda level, i: self._node(conn, level, i))

    def _node(self, conn: Connection, level: int, index: int) -> bytes:
        cached = self._nodes.get((level, index))
        if cached is not None:
            return cached
        value = conn.execute(
            select(log_nodes.c.hash).where(log_nodes.c.level == level, log_nodes.c.idx == index)
        ).scalar()
        if value is None:
            raise LookupError(f"log node ({level}, {index}) is missing")
        # Every node read was committed by an earlier append (the head lock orders appends).
        self._remember([(level, index, bytes(value))])
        return bytes(value)

    def _remember(self, nodes: list[tuple[int, int, bytes]]) -> None:
        if len(self._nodes) + len(nodes) > self._node_cache:
            self._nodes.clear()
        for level, index, value in nodes:
            self._nodes[(level, index)] = value


# Ingest's statements, built once (SQLAlchemy builds and keys a statement made per call anew).
_STORED_INDEX = select(bundles.c.log_index).where(bundles.c.digest == bindparam("digest"))
_LOOKUP = select(probes, _STORED_INDEX.scalar_subquery().label("stored_index")).where(
    probes.c.key_id.in_(bindparam("key_ids", expanding=True))
)
_LOCK_HEAD = (  # the head row's lock orders appends; the digest's index says if already stored
    select(log_head.c.size, _STORED_INDEX.scalar_subquery())
    .where(log_head.c.id == 1)
    .with_for_update(of=log_head)
)
_INSERT_BUNDLE = insert(bundles)
_INSERT_MEASUREMENTS = insert(measurements)
_INSERT_NODES = insert(log_nodes)
_SET_SIZE = update(log_head).where(log_head.c.id == 1).values(size=bindparam("size"))

# PostgreSQL: the bundle, its measurement rows, its log nodes and the new log size in ONE statement
# (one round trip; the same transaction as before, so a crash still leaves all or none). The
# rows travel as one JSON array: psycopg's text arrays escape each element in Python.
_MEASUREMENT_COLUMNS = (
    ("measurement_id", "text"),
    ("platform", "text"),
    ("target", "text"),
    ("domain", "text"),
    ("country", "text"),
    ("asn", "bigint"),
    ("verdict", "text"),
    ("method", "text"),
    ("started_at", "timestamptz"),
    ("body", "text"),
)
_PG_APPEND = f"""
WITH b AS (
    INSERT INTO bundles (digest, key_id, received_at, log_index, measurement_count, envelope)
    VALUES (%(digest)s, %(key_id)s, %(received_at)s, %(log_index)s, %(measurement_count)s,
            %(envelope)s)
), m AS (
    INSERT INTO measurements (bundle_digest, {", ".join(c for c, _ in _MEASUREMENT_COLUMNS)})
    SELECT %(digest)s, {", ".join(f'r."{c}"' for c, _ in _MEASUREMENT_COLUMNS)}
    FROM ROWS FROM (json_to_recordset(%(rows)s::json) AS ({
    ", ".join(f'"{c}" {t}' for c, t in _MEASUREMENT_COLUMNS)
})) WITH ORDINALITY AS r({", ".join(f'"{c}"' for c, _ in _MEASUREMENT_COLUMNS)}, ord)
    ORDER BY r.ord
), n AS (
    INSERT INTO log_nodes (level, idx, hash)
    SELECT * FROM unnest(%(levels)s::integer[], %(idxs)s::bigint[], %(hashes)s::bytea[])
)
UPDATE log_head SET size = %(log_index)s + 1 WHERE id = 1
"""


def _pg_append_params(
    bundle: dict[str, Any], rows: Sequence[dict[str, Any]], nodes: list[tuple[int, int, bytes]]
) -> dict[str, Any]:
    params = dict(bundle)
    params["rows"] = json.dumps(
        [{c: _json_value(row[c]) for c, _ in _MEASUREMENT_COLUMNS} for row in rows]
    )
    params["levels"] = [lv for lv, _, _ in nodes]
    params["idxs"] = [i for _, i, _ in nodes]
    params["hashes"] = [h for _, _, h in nodes]
    return params


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
