"""Known blockpages and injected DNS answers (OONI's lists as generated data).

Matched by the HTTP step on bodies and by the classifier on headers and answers, so it sits
below both. ``python -m probe.fingerprints.make CSV_FOLDER`` regenerates ``data/``.
"""
