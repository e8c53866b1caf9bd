"""The top layer: the ``blockprobe`` command, composed of every package's commands.

Nothing below imports it: the probe, the collector, the reports and the lab each offer their
command group, and ``blockprobe.cli`` puts them together.
"""
