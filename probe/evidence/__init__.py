"""The evidence path: a run's measurements become a signed bundle (bundle, signing,
keys), wait in the durable outbox, and are enrolled and uploaded to a collector.
It knows nothing of the daemon and nothing of how a measurement was made.
"""
