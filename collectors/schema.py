"""The collector's tables (SQLAlchemy Core): probes, bundles, measurements and the log.

This is the current shape; ``collectors.migrations`` creates and evolves it. No table has a column
for a client address: the collector never stores one.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
)

probes = Table(
    "probes",
    metadata,
    Column("key_id", String(64), primary_key=True),
    Column("public_key", LargeBinary(32), nullable=False),
    Column("enrolled_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("revoke_reason", Text),
    # v5: the network the key is bound to, who vouched for it, and when it was approved
    Column("country", String(2)),
    Column("asn", BigInteger),
    Column("voucher", String(100)),  # "token:<digest>", "approval:<key id>" or "open"
    Column("approved_at", DateTime(timezone=True)),  # None: waiting for an administrator
)

rate_buckets = Table(  # v5: token buckets shared by every worker (collectors.limits)
    "rate_buckets",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("tokens", Float, nullable=False),
    Column("updated", Float, nullable=False),  # seconds since the epoch
    Column("allowed", Integer, nullable=False),  # 1 if the last take was allowed
)

bundles = Table(
    "bundles",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("key_id", String(64), ForeignKey("probes.key_id"), nullable=False, index=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("log_index", BigInteger, nullable=False, unique=True),
    Column("measurement_count", Integer, nullable=False),
    Column("envelope", LargeBinary, nullable=False),
)

measurements = Table(
    "measurements",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("bundle_digest", String(64), ForeignKey("bundles.digest"), nullable=False, index=True),
    Column("measurement_id", Text, nullable=False),
    Column("platform", Text, nullable=False),
    Column("target", Text, nullable=False),
    Column("domain", Text, nullable=False),
    Column("country", String(2)),
    Column("asn", BigInteger),
    Column("verdict", String(20), nullable=False),
    Column("method", Text),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("body", Text, nullable=False),  # the measurement's JSON
)

log_head = Table(
    "log_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("size", BigInteger, nullable=False),
)

log_nodes = Table(
    "log_nodes",
    metadata,
    Column("level", Integer, primary_key=True),
    Column("idx", BigInteger, primary_key=True),
    Column("hash", LargeBinary(32), nullable=False),
)
