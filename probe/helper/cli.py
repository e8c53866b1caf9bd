"""``blockprobe helper serve``: run the control vantage with uvicorn.

The allow-list comes from the helper's config, which this module does not parse: the caller
passes ``load(config_path) -> (MeasureSettings, allowed)`` to ``make_cli``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer
import uvicorn

from probe.flows.plan import MeasureSettings
from probe.helper.app import create_app

HelperConfig = tuple[MeasureSettings, Callable[[str], bool]]
ConfigLoader = Callable[[Path | None], HelperConfig]


def make_cli(load: ConfigLoader) -> typer.Typer:
    """A typer app with ``serve``, using ``load`` to build settings and the allow-list."""
    app = typer.Typer(
        name="helper", help="The control vantage (test helper).", no_args_is_help=True
    )

    @app.command()
    def serve(
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
        port: int = typer.Option(8080, "--port", help="Port to listen on."),
        config: Path | None = typer.Option(None, "--config", help="Helper config file."),
        certfile: Path | None = typer.Option(None, "--certfile", help="TLS certificate (PEM)."),
        keyfile: Path | None = typer.Option(None, "--keyfile", help="TLS private key (PEM)."),
    ) -> None:
        """Serve POST /api/v1/control for the endpoints the config allows.

        Client addresses are never logged (no access log): a probe's address next to the
        platform it asked about would say who tested what.
        """
        settings, allowed = load(config)
        uvicorn.run(
            create_app(settings, allowed),
            host=host,
            port=port,
            ssl_certfile=str(certfile) if certfile else None,
            ssl_keyfile=str(keyfile) if keyfile else None,
            access_log=False,
            server_header=False,
            proxy_headers=False,
            log_level="info",
        )

    return app
