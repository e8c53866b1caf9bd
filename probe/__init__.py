"""blockprobe: tells a platform block from a throttle from an outage, with signed evidence."""

__version__ = "0.1.0"
__all__ = ["__version__"]
