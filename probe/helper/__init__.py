"""The control vantage ("test helper"): measures an allowed endpoint from its own network."""

from probe.helper.app import ControlRequest, create_app
from probe.helper.client import ask_control

__all__ = ["ControlRequest", "ask_control", "create_app"]
