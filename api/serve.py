"""`ambiance serve`: the service over HTTP with uvicorn.

The command line (ambiance/cli.py) finds this subcommand through the `ambiance.commands`
entry point group (pyproject.toml), so the core never imports the web package by name.
"""

from __future__ import annotations

import argparse
import socket

from ambiance import __version__
from ambiance.cli import Subcommands, common, library, settings_from, urls
from ambiance.config import Settings
from ambiance.errors import AmbianceError
from ambiance.infra import datadir, logs
from ambiance.infra.auth import page_link, token_required
from ambiance.infra.memory import freeze_startup_objects
from ambiance.infra.store import Tokens
from ambiance.service import Ambiance, preflight


def register(subcommands: Subcommands) -> None:
    """Add `serve` to the command line (the entry point's function)."""
    serve = subcommands.add_parser("serve", help="run the service")
    common(serve)
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8321; 0: any free)")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    serve.add_argument(
        "--log-format", choices=["text", "json"], help="text (default) or JSON lines"
    )
    serve.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Every subcommand loads this module to list `serve`: the web stack only when serving.
    import uvicorn
    import uvicorn.config

    from .app import create_app

    settings = settings_from(
        args, host=args.host, port=args.port, log_level=args.log_level, log_format=args.log_format
    )
    scenes = library(settings)  # fail here, with the file and field, before binding
    preflight(settings, scenes)  # what `ambiance check` checks, the same way
    json_logs = settings.log_format == "json"
    logs.setup(settings.log_level, json=json_logs)
    datadir.prepare(settings.data_dir)  # made, and taking a write, before the token is
    # The API token: made on the first start and shown that once (only its hash is kept).
    new_token = Tokens(settings.data_dir).ensure()
    core = Ambiance(settings, library=scenes)
    app = create_app(core, manage_core=False)  # the server below starts and stops it
    refused: list[AmbianceError] = []

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            # The core starts here rather than in the app's lifespan, where uvicorn would
            # print a refusal (a damaged database, a full disk) as a traceback: it is said
            # in one line by the command line, and the process exits 1.
            try:
                await core.start()
            except AmbianceError as exc:
                refused.append(exc)
                self.should_exit = True
                return
            try:
                await super().startup(sockets)
            except BaseException:  # the port is taken: uvicorn has said so, and exits
                await core.stop()
                raise
            if self.started:
                port = self.servers[0].sockets[0].getsockname()[1] if self.servers else args.port
                here, lan = urls(settings.host, port)
                print(f"ambiance {__version__} is running: open {here}", flush=True)
                if lan:
                    print(f"  from a phone on this network: {lan}", flush=True)
                print(f"  API and its docs: {here}docs", flush=True)
                if new_token is not None:
                    _show_new_token(lan or here, new_token, settings)
                freeze_startup_objects()  # the core is up: its rooms live as long as we do

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            await super().shutdown(sockets)
            await core.stop()

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # JSON: uvicorn's loggers go to our handler too (log_config=None leaves them be).
        log_config=None if json_logs else uvicorn.config.LOGGING_CONFIG,
    )
    Server(config).run()
    if refused:
        raise refused[0]
    return 0


def _show_new_token(url: str, token: str, settings: Settings) -> None:
    """Print a new API token, the one time it can be seen (to stdout, never to a log)."""
    needed = token_required(settings.auth, settings.host)
    print("  A new API token was made; it is shown this once (only its hash is kept).", flush=True)
    print(f"  Open the page logged in: {page_link(url, token)}", flush=True)
    print(f"  Or send: Authorization: Bearer {token}", flush=True)
    if not needed:
        print(
            "  (Not needed while ambiance listens on loopback only; see auth.required.)", flush=True
        )
    print("  Lost it? ambiance token --reset makes a new one.", flush=True)
