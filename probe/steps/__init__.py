"""Measurement steps: one network operation per module, each returning an ``*Observation``.

Steps never raise on network failure: the failure is data (``probe.net.errors``). Programming
errors still raise. Time limits are the caller's choice and reach the step as ``deadline``, an
absolute time on the running loop's clock (as ``asyncio.timeout_at`` takes; see
``probe.net.clock.deadline_in``). The step applies it at its own boundary, so a timeout is
recorded as ``generic_timeout_error`` instead of escaping as an exception.
"""
