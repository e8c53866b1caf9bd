"""Measurement steps: one network operation per module, each returning an ``*Observation``.

Steps never raise on network failure: the failure is data (``probe.net.errors``). Programming
errors still raise. Time limits are the caller's choice and reach the step as ``deadline``, an
absolute time on the running loop's clock (as ``asyncio.timeout_at`` takes; see
``probe.net.clock.deadline_in``). The step applies it at its own boundary, so a timeout is
recorded as ``generic_timeout_error`` instead of escaping as an exception.
"""

from dns._features import force as _force_dns_feature

# dnspython loads aioquic for DNS over QUIC as soon as its async query module is imported, when
# aioquic is installed. The probe never uses DoQ: aioquic stays unloaded until a QUIC step runs.
_force_dns_feature("doq", False)  # (a plain `import dns` would hide probe.steps.dns)
