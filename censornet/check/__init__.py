"""``blockprobe lab check``: score any probe against the scenario catalogue's expectations.

``env`` says what a probe needs to run in the lab, ``contract`` reads the probe's output (the
verdict contract), ``scoring`` compares it with a scenario's expectations, ``runner`` applies the
scenarios one by one and runs the probe command, ``report`` and ``junit`` write the results.
"""
