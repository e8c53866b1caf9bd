"""``python -m probe``: the same as the ``blockprobe`` command."""

from probe.cli import main

main()
