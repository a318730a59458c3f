"""`ambiance serve | token | check | pair | chime`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
from pathlib import Path
from typing import Any

from ambiance import __version__
from ambiance.config import Settings, load_settings
from ambiance.core.scenes import Library, builtin_scenes_dir, load_library
from ambiance.errors import AmbianceError, ConfigError
from ambiance.infra import logs
from ambiance.infra.auth import page_link, token_required
from ambiance.infra.store import Tokens
from ambiance.service import check_rooms

log = logging.getLogger("ambiance")


def _settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    return load_settings(
        getattr(args, "config", None), data_dir=getattr(args, "data_dir", None), **overrides
    )


def _library(settings: Settings, extra: list[Path] | None = None) -> Library:
    return load_library([builtin_scenes_dir(), *settings.scenes, *(extra or [])])


def _fail(exc: AmbianceError) -> int:
    problems = exc.problems if isinstance(exc, ConfigError) else [exc.message]
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1


# --- serve ------------------------------------------------------------------------------


def _urls(host: str, port: int) -> tuple[str, str | None]:
    """Return the URL to open here, and one for a phone on the LAN if we listen there."""
    if host in ("0.0.0.0", "::", ""):
        return f"http://127.0.0.1:{port}/", f"http://{socket.gethostname()}:{port}/"
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/", None


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn
    import uvicorn.config

    from ambiance.infra.memory import freeze_startup_objects
    from ambiance.service import Ambiance
    from api.app import create_app

    settings = _settings(
        args, host=args.host, port=args.port, log_level=args.log_level, log_format=args.log_format
    )
    library = _library(settings)  # fail here, with the file and field, before binding
    check_rooms(settings, library)
    json_logs = settings.log_format == "json"
    logs.setup(settings.log_level, json=json_logs)
    # The API token: made on the first start and shown that once (only its hash is kept).
    new_token = Tokens(settings.data_dir).ensure()
    core = Ambiance(settings, library=library)
    app = create_app(core, manage_core=True)

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                port = self.servers[0].sockets[0].getsockname()[1] if self.servers else args.port
                here, lan = _urls(settings.host, port)
                print(f"ambiance {__version__} is running: open {here}", flush=True)
                if lan:
                    print(f"  from a phone on this network: {lan}", flush=True)
                print(f"  API and its docs: {here}docs", flush=True)
                if new_token is not None:
                    _show_new_token(lan or here, new_token, settings)
                freeze_startup_objects()  # the core is up: its rooms live as long as we do

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # JSON: uvicorn's loggers go to our handler too (log_config=None leaves them be).
        log_config=None if json_logs else uvicorn.config.LOGGING_CONFIG,
    )
    Server(config).run()
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


# --- token ------------------------------------------------------------------------------


def cmd_token(args: argparse.Namespace) -> int:
    settings = _settings(args)
    store = Tokens(settings.data_dir)
    if not args.reset:
        state = "exists" if store.exists() else "does not exist yet (ambiance serve makes it)"
        print(f"The API token's hash is in {store.path}: it {state}.")
        print("The token itself is not kept; ambiance token --reset makes a new one.")
        return 0
    token = store.reset()
    url, _ = _urls(settings.host, settings.port)
    print("A new API token; the old one no longer works. It is shown this once:")
    print(f"  {token}")
    print(f"Open the page logged in: {page_link(url, token)}")
    print(f"Or send: Authorization: Bearer {token}")
    return 0


# --- check ------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    settings = _settings(args)
    library = _library(settings, args.scenes)
    check_rooms(settings, library)
    print(
        f"ok: {len(settings.rooms)} room(s), {len(library.scenes)} scene(s), "
        f"{len(library.routines)} routine(s)"
    )
    return 0


# --- pair -------------------------------------------------------------------------------


def cmd_pair(args: argparse.Namespace) -> int:
    from ambiance.devices.lights.hue import HueCredentials, pair

    settings = _settings(args)
    print(f"Pairing with the Hue bridge at {args.bridge}.")
    print("Press the round link button on top of the bridge now.")

    def waiting(seconds_left: float) -> None:
        print(f"  waiting for the link button... ({seconds_left:.0f} s left)", flush=True)

    username = asyncio.run(pair(args.bridge, timeout=args.timeout, on_wait=waiting))
    store = HueCredentials(settings.data_dir)
    store.save(args.bridge, username)
    print(f"Paired. The bridge's credentials are stored in {store.path}.")
    print(
        "Use it in your config:\n"
        f"  rooms:\n    bedroom:\n      lights: {{backend: hue, bridge: {args.bridge}, "
        "group: Bedroom}"
    )
    return 0


# --- chime ------------------------------------------------------------------------------


def cmd_chime(args: argparse.Namespace) -> int:
    from ambiance.devices.music.chime import chime_wav

    folder: Path = args.out.expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "chime.wav"
    path.write_bytes(chime_wav())
    print(f"Wrote {path}. Let your player see it (for MPD: `mpc update`), and point")
    print("`music.cue` at it, relative to the music library (default: ambiance/chime.wav).")
    return 0


# --- main -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ambiance", description="Turn a room into a spa for a massage at home."
    )
    parser.add_argument("--version", action="version", version=f"ambiance {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", type=Path, help="YAML config file (or $AMBIANCE_CONFIG)")
        p.add_argument("--data-dir", type=Path, help="where ambiance keeps its data")

    serve = sub.add_parser("serve", help="run the service")
    common(serve)
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8321; 0: any free)")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    serve.add_argument(
        "--log-format", choices=["text", "json"], help="text (default) or JSON lines"
    )
    serve.set_defaults(func=cmd_serve)

    token = sub.add_parser("token", help="the API token: --reset makes a new one, shown once")
    common(token)
    token.add_argument(
        "--reset", action="store_true", help="make a new token (the old one stops working)"
    )
    token.set_defaults(func=cmd_token)

    check = sub.add_parser("check", help="validate the config, scenes and routines")
    common(check)
    check.add_argument(
        "--scenes",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="also check this folder of scenes and routines (repeatable)",
    )
    check.set_defaults(func=cmd_check)

    pair = sub.add_parser("pair", help="pair with a Philips Hue bridge (press its link button)")
    common(pair)
    pair.add_argument("--bridge", required=True, metavar="HOST[:PORT]")
    pair.add_argument("--timeout", type=float, default=60.0, help="seconds to wait (default 60)")
    pair.set_defaults(func=cmd_pair)

    chime = sub.add_parser("chime", help="write the stage chime (a WAV file) for your player")
    chime.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder to write chime.wav into, e.g. <music dir>/ambiance",
    )
    chime.set_defaults(func=cmd_chime)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except AmbianceError as exc:
        return _fail(exc)
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
