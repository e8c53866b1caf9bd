"""The two bases of every pydantic model of ours: immutable, and no key it does not know.

``FrozenModel`` for settings, records and requests; ``WireModel`` for the wire formats, which
also refuse NaN and infinity (JSON has neither, so a bundle that carried one could not be read
back the same).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class FrozenModel(BaseModel):
    """Immutable; an unknown key is an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class WireModel(BaseModel):
    """A wire format: immutable, no unknown key, no NaN or infinity."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
