"""The control vantage ("test helper"): measures an allowed endpoint from its own network.

The server side (``probe.helper.app``, FastAPI) is imported only by ``blockprobe helper``: a probe
asking the helper needs the client and the request model alone.
"""

from probe.helper.client import ask_control
from probe.helper.request import ControlRequest

__all__ = ["ControlRequest", "ask_control"]
