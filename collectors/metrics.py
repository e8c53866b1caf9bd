"""Collector metrics in the Prometheus text exposition format (counters of this process)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping


class Metrics:
    """Bundles accepted, bundles rejected by reason, measurements stored."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.accepted = 0
        self.duplicates = 0
        self.measurements = 0
        self.rejected: Counter[str] = Counter()

    def accept(self, measurements: int) -> None:
        with self._lock:
            self.accepted += 1
            self.measurements += measurements

    def duplicate(self) -> None:
        with self._lock:
            self.duplicates += 1

    def reject(self, reason: str) -> None:
        with self._lock:
            self.rejected[reason] += 1

    def render(self, gauges: Mapping[str, tuple[str, float]] | None = None) -> str:
        """The exposition text; ``gauges`` maps a name to (help, value)."""
        with self._lock:
            lines = [
                "# HELP blockprobe_bundles_accepted_total Bundles stored.",
                "# TYPE blockprobe_bundles_accepted_total counter",
                f"blockprobe_bundles_accepted_total {self.accepted}",
                "# HELP blockprobe_bundles_duplicate_total Bundles received again (200).",
                "# TYPE blockprobe_bundles_duplicate_total counter",
                f"blockprobe_bundles_duplicate_total {self.duplicates}",
                "# HELP blockprobe_bundles_rejected_total Bundles refused, by reason.",
                "# TYPE blockprobe_bundles_rejected_total counter",
            ]
            lines += [
                f'blockprobe_bundles_rejected_total{{reason="{reason}"}} {n}'
                for reason, n in sorted(self.rejected.items())
            ]
            lines += [
                "# HELP blockprobe_measurements_stored_total Measurements stored.",
                "# TYPE blockprobe_measurements_stored_total counter",
                f"blockprobe_measurements_stored_total {self.measurements}",
            ]
        for name, (help_text, value) in (gauges or {}).items():
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value:g}"]
        return "\n".join(lines) + "\n"
