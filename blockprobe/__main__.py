"""``python -m blockprobe``: the same as the ``blockprobe`` command."""

from blockprobe.cli import main

main()
