"""The collector: enrolment, signed-bundle ingest, the store, the rollups, schema and migrations.

It owns every write to its database; the reports read its tables and write none. The
transparency log's hashes and checkpoints come from ``translog``; the served app, with the
report routes added, is ``reports.app``.
"""
