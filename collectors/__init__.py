"""The collector service: enrolment, signed-bundle ingestion and storage, transparency log."""
