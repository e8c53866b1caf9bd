"""blockprobe's vantage point: tells a platform block from a throttle from an outage.

The engine is model -> steps -> flows -> classify -> run (``net`` and ``fingerprints`` under the
steps); ``evidence`` signs, queues and uploads what a run found; ``daemon`` schedules runs for a
volunteer; ``commands`` are the volunteer's command groups. docs/architecture.md draws it.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
