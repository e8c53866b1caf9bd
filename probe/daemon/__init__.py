"""The volunteer's daemon: the schedule, consent, the state directory, status and
metrics, the daemon's settings, and handing each run's evidence to the outbox.
"""
