"""The helper tests share the step tests' fixtures (anyio backend, test CA)."""

from tests.probe.steps.conftest import ca, ca_file  # noqa: F401
