"""`ambiance serve | token | check | backup | restore | pair | chime`.

`serve` (HTTP) lives in the web package, api/serve.py: it is found through the
`ambiance.commands` entry point group, so the core imports no web framework.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
import time
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ambiance import __version__
from ambiance.config import Settings, load_settings
from ambiance.core.scenes import Library, builtin_scenes_dir, load_library
from ambiance.core.scenes import warnings as scene_warnings
from ambiance.errors import MAX_PROBLEM, MAX_PROBLEMS, AmbianceError, ConfigError, clip
from ambiance.infra.auth import page_link
from ambiance.infra.store import DB_NAME, Store, Tokens, backups
from ambiance.infra.store.restore import restore
from ambiance.service import preflight

if TYPE_CHECKING:
    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    Subcommands = argparse._SubParsersAction

log = logging.getLogger("ambiance")

# Entry points in this group are functions that add a subcommand: register(subcommands).
COMMANDS_GROUP = "ambiance.commands"


def settings_from(args: argparse.Namespace, **overrides: Any) -> Settings:
    return load_settings(
        getattr(args, "config", None), data_dir=getattr(args, "data_dir", None), **overrides
    )


def library(settings: Settings, extra: list[Path] | None = None) -> Library:
    return load_library([builtin_scenes_dir(), *settings.scenes, *(extra or [])])


def _fail(exc: AmbianceError) -> int:
    problems = exc.problems if isinstance(exc, ConfigError) else [exc.message]
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1


# --- shared with the subcommands from entry points (api/serve.py) -------------------------


def urls(host: str, port: int) -> tuple[str, str | None]:
    """Return the URL to open here, and one for a phone on the LAN if we listen there."""
    if host in ("0.0.0.0", "::", ""):
        return f"http://127.0.0.1:{port}/", f"http://{socket.gethostname()}:{port}/"
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/", None


def common(parser: argparse.ArgumentParser) -> None:
    """The options every subcommand that reads the config takes."""
    parser.add_argument("--config", type=Path, help="YAML config file (or $AMBIANCE_CONFIG)")
    parser.add_argument("--data-dir", type=Path, help="where ambiance keeps its data")


def _plugged_in(sub: Subcommands) -> None:
    """Add the subcommands other packages declare (`serve`, by api/ through pyproject.toml)."""
    for entry in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        register: Callable[[Subcommands], None] = entry.load()
        register(sub)


# --- token ------------------------------------------------------------------------------


def cmd_token(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    store = Tokens(settings.data_dir)
    if not args.reset:
        state = "exists" if store.exists() else "does not exist yet (ambiance serve makes it)"
        print(f"The API token's hash is in {store.path}: it {state}.")
        print("The token itself is not kept; ambiance token --reset makes a new one.")
        return 0
    token = store.reset()
    url, _ = urls(settings.host, settings.port)
    print("A new API token; the old one no longer works. It is shown this once:")
    print(f"  {token}")
    print(f"Open the page logged in: {page_link(url, token)}")
    print(f"Or send: Authorization: Bearer {token}")
    return 0


# --- check ------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    found = library(settings, args.scenes)
    preflight(settings, found)  # what `serve` checks before it starts, the same way
    for warning in scene_warnings(found)[:MAX_PROBLEMS]:
        print(f"warning: {clip(warning, MAX_PROBLEM)}", file=sys.stderr)
    print(
        f"ok: {len(settings.rooms)} room(s), {len(found.scenes)} scene(s), "
        f"{len(found.routines)} routine(s)"
    )
    return 0


# --- backup and restore -------------------------------------------------------------------


def cmd_backup(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    store = Store.in_dir(settings.data_dir)
    if not store.db.path.exists():
        print(f"There is no database to back up at {store.db.path}.")
        return 1
    store.open()  # checked first: a damaged database is refused, never backed up
    try:
        made = store.db.backup()
    finally:
        store.close()
    folder = backups.folder_of(store.db.path)
    if made is None:
        print(f"Nothing changed since the newest backup, {backups.newest(folder)}.")
    else:
        print(f"Backed up to {made}.")
    print(f"ambiance keeps the newest {backups.KEEP} in {folder}.")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    db = settings.data_dir / DB_NAME
    source: Path = args.file
    replaced = restore(source, db, time.time())
    print(f"Restored {source} as {db}.")
    if replaced is not None:
        print(f"The database it replaced is kept as {replaced}.")
    print("Start ambiance again: ambiance serve")
    return 0


# --- pair -------------------------------------------------------------------------------


def cmd_pair(args: argparse.Namespace) -> int:
    from ambiance.devices.lights.hue import HueCredentials, pair

    settings = settings_from(args)
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
    _plugged_in(sub)  # first: `serve` leads the list, as it always has

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

    backup = sub.add_parser("backup", help="back the database up now, into <data dir>/backups")
    common(backup)
    backup.set_defaults(func=cmd_backup)

    restore_ = sub.add_parser(
        "restore", help="put a backup back in place of the database (with ambiance stopped)"
    )
    common(restore_)
    restore_.add_argument(
        "file", type=Path, help="the backup file: <data dir>/backups/ambiance-<time>.db"
    )
    restore_.set_defaults(func=cmd_restore)

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
    except OSError as exc:  # a file the command needs: one line, not a traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
